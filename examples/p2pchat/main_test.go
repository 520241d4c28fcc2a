package main

import (
	"bytes"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-msrp/msrp/internal/leakcheck"
)

func TestP2PChat(t *testing.T) {
	leakcheck.Check(t)
	var out bytes.Buffer
	require.NoError(t, run(&out, 4<<20), out.String())
	text := out.String()
	t.Log("\n" + text)

	for _, who := range []string{"alice", "bob  "} {
		for _, line := range []string{
			"m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
			`a=dcmap:0 label="chat";subprotocol="msrp"`,
			"a=dcsa:0 accept-types:text/plain application/octet-stream",
			"a=dcsa:0 msrp-cema",
		} {
			assert.Contains(t, text, who+" SDP  "+line)
		}
	}
	assert.Regexp(t, `alice SDP  a=dcsa:0 path:msrps://alice\.invalid:9/\w+;dc\r?\n`, text)
	assert.Regexp(t, `bob   SDP  a=dcsa:0 path:msrps://bob\.invalid:9/\w+;dc\r?\n`, text)
	assert.Contains(t, text, "alice SDP  a=dcsa:0 setup:actpass")
	assert.Contains(t, text, "bob   SDP  a=dcsa:0 setup:passive")
	assert.Contains(t, text, "alice MSRP session bound over data channel chat#0 (active: sent the first SEND)")
	assert.Contains(t, text, "bob   MSRP session bound over data channel chat#0 (passive: answered the first SEND)")

	for _, line := range []string{
		`alice → bob   "Hi Bob! No server between us this time."`,
		`bob   → alice "Hi Alice, just a data channel. Nice."`,
		`alice → bob   "Here comes the file."`,
		`bob   → alice "Ready."`,
	} {
		assert.Contains(t, text, line)
	}

	sent := regexp.MustCompile(`alice sends a 4194304-byte file in chunks of up to \d+ bytes; sha256 ([0-9a-f]{64})\n`).FindStringSubmatch(text)
	got := regexp.MustCompile(`bob   received the file: 4194304 bytes; sha256 ([0-9a-f]{64}) matches\n`).FindStringSubmatch(text)
	require.NotNil(t, sent, "the line of the file sent")
	require.NotNil(t, got, "the line of the file received")
	assert.Equal(t, sent[1], got[1], "the SHA-256 Bob computed is Alice's")
	assert.Contains(t, text, "alice hung up; bob's session ended cleanly\n")
}
