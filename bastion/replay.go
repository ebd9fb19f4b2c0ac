package bastion

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"charm.land/ssh"

	"github.com/bastion-dev/bastion/recorder"
	"github.com/bastion-dev/bastion/recorder/replay"
)

// builtinReplay plays a recorded session to an auditor: `ssh -t bastion
// replay ID` in the interactive player (keys from this session's input, size
// from its PTY), without a PTY as plain output at the recorded pace. The
// replayed output is sanitised either way, and, like everything this
// session shows, recorded in the auditor's own session. The access is put
// into the audit trail before anything is shown (PCI DSS 10.2.1.3).
func (st *session) builtinReplay(args string) exitResult {
	if !st.srv.config().IsAuditor(st.id.Groups) {
		// A refused look at someone's session is itself worth a record
		// (PCI DSS 10.2.1.4: invalid access attempts).
		st.srv.log.Warn("replay refused", "user", st.id.User, "groups", st.id.Groups)
		st.srv.audit(recorder.AuditRecord{Type: "audit.read", Outcome: recorder.OutcomeFailure, Reason: "not an auditor",
			User: st.id.User, Serial: st.id.Serial, Client: st.sess.RemoteAddr().String(),
			Detail: map[string]string{"what": "replay", "via": "ssh", "viewer_session": st.rec.ID(), "args": args}})
		st.errorf("only auditors may replay sessions; ask an admin for a role with audit: true")
		return exitResult{code: 1, reason: "not an auditor"}
	}
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	var usage bytes.Buffer
	fs.SetOutput(&usage)
	speed := fs.Float64("speed", 1, "playback speed, 0.25 to 16")
	idle := fs.Duration("idle-limit", 0, "cap every pause at this (e.g. 2s)")
	from := fs.Duration("from", 0, "start at this point of the recording (e.g. 1m30s)")
	var pos []string
	for rest := strings.Fields(args); ; {
		if err := fs.Parse(rest); err != nil {
			st.errorf("replay: %v; usage: replay ID [--speed X] [--idle-limit S] [--from T]", err)
			return exitResult{code: 2, reason: "usage"}
		}
		if fs.NArg() == 0 {
			break
		}
		pos, rest = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	if len(pos) != 1 {
		st.errorf("replay: want one session ID; `ssh %s sessions` lists them", st.srv.hostName)
		return exitResult{code: 2, reason: "usage"}
	}
	id := pos[0]
	if err := replay.CheckSpeed(*speed); err != nil {
		st.errorf("replay: --speed: %v", err)
		return exitResult{code: 2, reason: "usage"}
	}
	if *idle < 0 || *from < 0 {
		st.errorf("replay: --idle-limit and --from must not be negative")
		return exitResult{code: 2, reason: "usage"}
	}
	if err := recorder.CheckSessionID(id); err != nil {
		st.errorf("replay: %v", err)
		return exitResult{code: 2, reason: "usage"}
	}
	meta, err := st.srv.store.Session(st.ctx, id)
	if errors.Is(err, recorder.ErrNotFound) {
		st.errorf("no session %q; `ssh %s sessions` lists them", id, st.srv.hostName)
		return exitResult{code: 1, reason: "no such session"}
	}
	if err != nil {
		return st.internalError("replay: read session", err)
	}
	actx, cancel := context.WithTimeout(st.ctx, auditTimeout)
	_, err = st.srv.store.AppendAudit(actx, recorder.AuditRecord{Type: "audit.read", Outcome: recorder.OutcomeSuccess,
		User: st.id.User, Serial: st.id.Serial, Client: st.sess.RemoteAddr().String(), Session: id,
		Detail: map[string]string{"what": "replay", "via": "ssh", "viewer_session": st.rec.ID(), "args": args}})
	cancel()
	if err != nil {
		return st.internalError("replay: audit the access (nothing was shown)", err)
	}
	if !st.hasPty {
		err = st.replayPlain(id, recorder.PlayOptions{Speed: *speed, IdleLimit: *idle, From: *from})
	} else {
		err = st.replayPlayer(meta, replay.Options{Speed: *speed, IdleLimit: *idle, From: *from,
			User: meta.User, Target: meta.Target, NoColor: st.noColor()})
	}
	if err != nil && st.ctx.Err() == nil {
		return st.internalError("replay", err)
	}
	return exitResult{}
}

// auditTimeout bounds the audit write that must precede a replay.
const auditTimeout = 5 * time.Second

// replayPlain streams the recording at its pace, sanitised.
func (st *session) replayPlain(id string, opt recorder.PlayOptions) error {
	pr, pw := io.Pipe()
	var wg sync.WaitGroup
	wg.Go(func() { pw.CloseWithError(st.srv.store.WriteRecording(st.ctx, id, pw)) })
	defer func() { _ = pr.Close(); wg.Wait() }()
	w := replay.NewWriter(st.stdout)
	if err := recorder.Play(st.ctx, pr, w, opt); err != nil {
		return err
	}
	return w.Close()
}

// replayPlayer runs the interactive player on this session's PTY.
func (st *session) replayPlayer(meta recorder.SessionMeta, opt replay.Options) error {
	var src replay.Source
	if cr, ok := st.srv.store.(recorder.ChunkReader); ok {
		s, err := replay.OpenStore(st.ctx, cr, meta.ID)
		if err != nil {
			return err
		}
		src = s
	} else {
		pr, pw := io.Pipe()
		var wg sync.WaitGroup
		wg.Go(func() { pw.CloseWithError(st.srv.store.WriteRecording(st.ctx, meta.ID, pw)) })
		s, _, err := replay.ReadStream(st.ctx, pr)
		_ = pr.Close()
		wg.Wait()
		if err != nil {
			return fmt.Errorf("recording %s: %w", meta.ID, err)
		}
		src = s
	}
	resize := make(chan replay.Size, 1)
	win := st.attachResize(func(w ssh.Window) {
		// Keep only the latest size; never block the window-change loop.
		for {
			select {
			case resize <- replay.Size{Width: w.Width, Height: w.Height}:
				return
			default:
				select {
				case <-resize:
				default:
				}
			}
		}
	})
	defer st.detachResize()
	opt.Size = replay.Size{Width: win.Width, Height: win.Height}
	opt.Resize = resize
	opt.Out = st.stdout
	opt.Keys = func(ctx context.Context) io.Reader { return st.input.reader(ctx) }
	return replay.Play(st.ctx, src, opt)
}

// noColor reports whether the client asked for no colour: NO_COLOR set and
// not empty in the environment it sent (ssh -o SetEnv=NO_COLOR=1). It is
// only read here, never passed on to a target.
func (st *session) noColor() bool {
	for _, kv := range st.sess.Environ() {
		if strings.HasPrefix(kv, "NO_COLOR=") && kv != "NO_COLOR=" {
			return true
		}
	}
	return false
}
