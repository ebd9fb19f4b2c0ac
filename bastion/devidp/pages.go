package devidp

import (
	"crypto/rand"
	"encoding/hex"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

const (
	pathDevice    = "/device"
	cookieSession = "devidp_session"
	actionAllow   = "allow"
	actionDeny    = "deny"
	sessionTTL    = 5 * time.Minute
)

// pages are the person's side of the device flow, in call order:
// GET /device (enter the code), POST /device/login (username and password),
// POST /device/confirm (allow or deny). Between login and confirm the
// person is remembered by a random session id in an HttpOnly, SameSite=Strict
// cookie; the session is server-side and used once.
type pages struct {
	store *storage
	log   *slog.Logger

	mu       sync.Mutex
	sessions map[string]session
}

type session struct {
	userCode, username string
	expires            time.Time
}

func (p *pages) register(mux *http.ServeMux) {
	p.sessions = make(map[string]session)
	mux.HandleFunc("GET "+pathDevice, p.codePage)
	mux.HandleFunc("POST "+pathDevice+"/login", p.login)
	mux.HandleFunc("POST "+pathDevice+"/confirm", p.confirm)
}

type pageData struct {
	Error    string
	UserCode string
	Username string
	ClientID string
	Scopes   []string
	Action   string
}

var tmpl = template.Must(template.New("").Parse(`
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>bastion development login</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}
label{display:block;margin:.8rem 0 .2rem}input{font-size:1.1rem;padding:.3rem;width:100%;box-sizing:border-box}
button{font-size:1rem;margin:1rem .5rem 0 0;padding:.4rem 1rem}.error{color:#b00020}.note{color:#666;font-size:.85rem}</style>
</head><body><h1>bastion development login</h1>
<p class="note">Local development identity provider: for trying only, never production.</p>
{{if .Error}}<p class="error">{{.Error}}</p>{{end}}{{end}}
{{define "foot"}}</body></html>{{end}}

{{define "code"}}{{template "head" .}}
<form method="post" action="/device/login">
<label for="user_code">Code shown by your terminal</label>
<input id="user_code" name="user_code" value="{{.UserCode}}" autocomplete="off" autofocus required>
<label for="username">Username</label>
<input id="username" name="username" value="{{.Username}}" autocomplete="username" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Log in</button>
</form>{{template "foot"}}{{end}}

{{define "consent"}}{{template "head" .}}
<p><b>{{.ClientID}}</b> asks to log you in as <b>{{.Username}}</b> with code <b>{{.UserCode}}</b>.</p>
<p>It will see: {{range $i, $s := .Scopes}}{{if $i}}, {{end}}{{$s}}{{end}}</p>
<form method="post" action="/device/confirm">
<button type="submit" name="action" value="allow">Allow</button>
<button type="submit" name="action" value="deny">Deny</button>
</form>{{template "foot"}}{{end}}

{{define "done"}}{{template "head" .}}
{{if eq .Action "allow"}}<p>Login allowed. You can close this page and return to your terminal.</p>
{{else}}<p>Login denied. You can close this page.</p>{{end}}{{template "foot"}}{{end}}
`))

func (p *pages) render(w http.ResponseWriter, status int, name string, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	if err := tmpl.ExecuteTemplate(w, name, d); err != nil {
		p.log.Warn("render device page", "page", name, "err", err)
	}
}

func (p *pages) codePage(w http.ResponseWriter, r *http.Request) {
	p.render(w, http.StatusOK, "code", pageData{UserCode: strings.TrimSpace(r.URL.Query().Get("user_code"))})
}

func (p *pages) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		p.render(w, http.StatusBadRequest, "code", pageData{Error: "The form could not be read."})
		return
	}
	d := pageData{UserCode: strings.TrimSpace(r.PostForm.Get("user_code")), Username: r.PostForm.Get("username")}
	st, err := p.store.pendingByUserCode(d.UserCode)
	if err != nil {
		d.Error = err.Error()
		p.render(w, http.StatusNotFound, "code", d)
		return
	}
	if _, ok := p.store.checkPassword(d.Username, r.PostForm.Get("password")); !ok {
		p.log.Info("device login refused: wrong username or password", "username", d.Username)
		d.Error = "Wrong username or password."
		p.render(w, http.StatusUnauthorized, "code", d)
		return
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		p.render(w, http.StatusInternalServerError, "code", pageData{Error: "Could not start a session."})
		return
	}
	sid := hex.EncodeToString(id)
	now := time.Now()
	p.mu.Lock()
	for k, s := range p.sessions {
		if now.After(s.expires) {
			delete(p.sessions, k)
		}
	}
	p.sessions[sid] = session{userCode: d.UserCode, username: d.Username, expires: now.Add(sessionTTL)}
	p.mu.Unlock()
	http.SetCookie(w, &http.Cookie{
		Name: cookieSession, Value: sid, Path: pathDevice,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: int(sessionTTL / time.Second),
	})
	d.ClientID, d.Scopes = st.ClientID, st.Scopes
	p.render(w, http.StatusOK, "consent", d)
}

func (p *pages) confirm(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	c, err := r.Cookie(cookieSession)
	if err != nil {
		p.render(w, http.StatusBadRequest, "code", pageData{Error: "Your login session is missing; enter the code again."})
		return
	}
	p.mu.Lock()
	s, ok := p.sessions[c.Value]
	delete(p.sessions, c.Value)
	p.mu.Unlock()
	if !ok || time.Now().After(s.expires) {
		p.render(w, http.StatusBadRequest, "code", pageData{Error: "Your login session has expired; enter the code again."})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieSession, Path: pathDevice, MaxAge: -1})
	if err := r.ParseForm(); err != nil {
		p.render(w, http.StatusBadRequest, "code", pageData{Error: "The form could not be read."})
		return
	}
	action := r.PostForm.Get("action")
	if action != actionAllow && action != actionDeny {
		p.render(w, http.StatusBadRequest, "code", pageData{Error: "Choose Allow or Deny.", UserCode: s.userCode})
		return
	}
	if err := p.store.complete(s.userCode, s.username, action == actionAllow); err != nil {
		p.render(w, http.StatusConflict, "code", pageData{Error: err.Error()})
		return
	}
	p.log.Info("device login decided", "username", s.username, "action", action)
	p.render(w, http.StatusOK, "done", pageData{Action: action})
}
