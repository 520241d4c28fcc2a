package main

import (
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/go-msrp/msrp"
)

// event is one line of the transcript: a SIP or MSRP message from one user
// agent to the other, or a note about what one of them did.
type event struct {
	from, to string // "alice", "bob"; to is "" for a note
	kind     string // "SIP", "MSRP" or "note"
	what     string // INVITE, 200, ACK, BYE; text, composing, imdn, file; a note's subject
	detail   string
}

// transcript prints the call as it happens, one line per message, and
// keeps the events for the tests. Both user agents write to it from their
// own goroutines.
type transcript struct {
	mu     sync.Mutex
	w      io.Writer
	text   strings.Builder // what was written to w
	events []event
}

func (t *transcript) add(e event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.events = append(t.events, e)
	if e.to == "" {
		t.printf("%-14s %s: %s\n", "", e.from, e.detail)
	} else {
		t.printf("%-5s → %-5s  %s\n", e.from, e.to, e.detail)
	}
}

// printf writes a line. Called with mu held.
func (t *transcript) printf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	t.text.WriteString(line)
	io.WriteString(t.w, line)
}

// String is everything printed so far.
func (t *transcript) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.text.String()
}

// sip records a SIP message that the user agent to received from from.
func (t *transcript) sip(from, to, what, detail string) {
	t.add(event{from: from, to: to, kind: "SIP", what: what, detail: detail})
}

// msrp records an MSRP message that to received from from.
func (t *transcript) msrp(from, to, what, detail string) {
	t.add(event{from: from, to: to, kind: "MSRP", what: what, detail: "MSRP " + detail})
}

// note records what who did or saw.
func (t *transcript) note(who, what, detail string) {
	t.add(event{from: who, kind: "note", what: what, detail: detail})
}

// blank prints an empty line between the acts of the demo.
func (t *transcript) blank() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.printf("\n")
}

// find returns the events of a kind and what ("" for any what).
func (t *transcript) find(kind, what string) []event {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []event
	for _, e := range t.events {
		if e.kind == kind && (what == "" || e.what == what) {
			out = append(out, e)
		}
	}
	return out
}

// sdpSummary is an SDP body on one line: its m= and a= lines as they
// travel, if msrp.ParseSDP can read it.
func sdpSummary(body []byte) string {
	if _, err := msrp.ParseSDP(body); err != nil {
		return "unreadable SDP: " + err.Error()
	}
	var parts []string
	for _, line := range strings.Split(string(body), "\n") {
		if line = strings.TrimSuffix(line, "\r"); strings.HasPrefix(line, "m=") || strings.HasPrefix(line, "a=") {
			parts = append(parts, line)
		}
	}
	return strings.Join(parts, " ")
}
