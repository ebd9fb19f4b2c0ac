// Package recorder keeps the evidence of every session that passes through
// the bastion: it encodes terminal traffic as asciicast v2 event lines, stores
// them in a bbolt file behind the [Store] interface, and plays or exports them
// again.
//
// The life of one recording, in call order:
//
//  1. The server opens the store once at start ([OpenBolt]) and calls
//     [Store.MarkInterrupted], so sessions cut short by a crash are marked as
//     such while their stored chunks still replay.
//  2. For each session channel it calls [NewRecorder], which writes the
//     session row ([Store.CreateSession]) and starts a flusher goroutine.
//  3. The stream goroutines call [Recorder.Output], [Recorder.Input],
//     [Recorder.Resize] and [Recorder.Marker]. These only copy into memory;
//     the flusher encodes the buffered events into event lines, has the
//     store check, compress and index each megabyte of them as it is
//     encoded ([Store.PrepareChunk]), and appends them in one commit
//     ([Store.AppendPrepared], shared with other sessions: groupcommit.go)
//     at least every flush interval, so a crash loses at most one interval.
//  4. If an append fails, [Recorder.Failed] is closed so the session can be
//     ended (recording.on_failure: terminate): an unrecorded session must not
//     go on silently.
//  5. At the end the server calls [Recorder.Close], which drains the UTF-8
//     decoders and the buffer and finalises the row (end, state, exit status,
//     byte counts).
//  6. Later, [Store.WriteRecording] rebuilds the asciicast v2 file, which
//     [Play] replays and `asciinema play` understands. Output that is not
//     UTF-8 text is kept byte for byte in "b" events ([EventBinary]), which
//     standard players skip and [ExportStandard] turns into "o" events for
//     them. Each append also
//     stored a seek index entry for its chunk ([ChunkInfo], seekindex.go),
//     through which the auditor's player (recorder/replay) jumps anywhere in
//     a long recording without decoding what comes before.
//
// bbolt holds an exclusive lock on its file, so the running server is the
// only writer; on-host commands reach the store through the server's admin
// socket while it runs and open the file directly only when it is stopped.
package recorder
