package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-msrp/msrp"
	"github.com/go-msrp/msrp/internal/interop"
	"github.com/go-msrp/msrp/internal/testrelay"
)

// TestMain says which interop tests were skipped.
func TestMain(m *testing.M) { os.Exit(interop.Main(m, "examples/sipchat")) }

// makeCall runs the demo with o and checks what the user agents saw.
func makeCall(t *testing.T, o options) *transcript {
	t.Helper()
	if o.fileSize == 0 {
		o.fileSize = 100 << 10
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log, err := run(ctx, io.Discard, o)
	out := log.String()
	require.NoError(t, err, out)
	t.Logf("the call:\n%s", out)
	checkCall(t, log, o)
	return log
}

// checkCall checks the transcript of a whole call: the SIP exchange of both
// calls, the offer and answer, the chat with its isComposing indications
// and delivery notifications, the file and its check, and the sessions
// ending cleanly.
func checkCall(t *testing.T, log *transcript, o options) {
	t.Helper()
	sipLines := func(what string) []event { return log.find("SIP", what) }
	invites := sipLines("INVITE")
	require.Len(t, invites, 2, "the chat call and the file call")
	assert.Len(t, sipLines("200"), 4, "two INVITEs and two BYEs answered")
	assert.GreaterOrEqual(t, len(sipLines("ACK")), 2, "over UDP, a late ACK is sent again for the 200 sent again")
	byes := sipLines("BYE")
	require.Len(t, byes, 2)
	assert.Equal(t, "bob → alice", byes[0].from+" → "+byes[0].to, "Bob hangs up the file call once he has the file")
	assert.Equal(t, "alice → bob", byes[1].from+" → "+byes[1].to, "Alice hangs up the chat")
	if o.proxy != "" {
		for _, e := range log.find("SIP", "") {
			if e.what != "200" || strings.Contains(e.detail, "SDP") { // sipgo does not show a BYE's 200
				assert.Contains(t, e.detail, "(via the proxy "+o.proxy+")", "every message goes through Kamailio")
			}
		}
	}

	chat, file := invites[0].detail, invites[1].detail
	for _, want := range []string{"m=message ", "TCP/MSRP *", "a=accept-types:message/cpim text/plain",
		"a=accept-wrapped-types:text/plain application/im-iscomposing+xml message/imdn+xml", "a=path:msrp://127.0.0.1:"} {
		assert.Contains(t, chat, want)
	}
	switch {
	case o.aliceRelay == nil:
		assert.Contains(t, chat, "a=setup:actpass", "directly, Alice can take either role")
	case o.bobActive:
		assert.Contains(t, chat, "a=setup:passive")
	default:
		assert.Contains(t, chat, "a=setup:active")
	}
	for _, want := range []string{"a=sendonly", `a=file-selector:name:"photo.jpg" type:image/jpeg size:`, "hash:sha-1:", "a=file-transfer-id:"} {
		assert.Contains(t, file, want)
	}
	answers := sipLines("200")
	bobSetup := map[bool]string{false: "a=setup:passive", true: "a=setup:active"}[o.bobActive]
	assert.Contains(t, answers[0].detail, bobSetup)
	assert.Contains(t, answers[1].detail, "a=recvonly")
	assert.Contains(t, answers[1].detail, "a=max-size:")
	for _, up := range log.find("note", "session up") {
		iConnect := (up.from == "bob") == o.bobActive
		assert.Equal(t, iConnect, strings.Contains(up.detail, "connected to"), up.detail)
		assert.Equal(t, o.aliceRelay != nil, strings.Contains(up.detail, "through the relay"), up.detail)
	}

	// The chat: each text preceded by its sender's active indication, and
	// answered by a delivery notification; Bob's pause shows the idle
	// timer's indication.
	msrpLines := log.find("MSRP", "")
	var texts []string
	for i, e := range msrpLines {
		switch e.what {
		case "text":
			texts = append(texts, e.from+": "+e.detail[strings.LastIndex(e.detail, "⟩ ")+len("⟩ "):])
			require.Greater(t, i, 0)
			assert.Equal(t, "composing", msrpLines[i-1].what, "an indication before %s", e.detail)
			assert.Contains(t, msrpLines[i-1].detail, "⟩ active, refresh 120 s")
			assert.Equal(t, e.from, msrpLines[i-1].from)
			require.Less(t, i+1, len(msrpLines))
			assert.Equal(t, "imdn", msrpLines[i+1].what)
			assert.Equal(t, e.to, msrpLines[i+1].from)
			assert.Contains(t, msrpLines[i+1].detail, "delivery-notification delivered")
			assert.Contains(t, e.detail, "message/cpim (From: ")
			assert.Contains(t, e.detail, "DateTime: ")
		case "composing":
			assert.Contains(t, e.detail, "message/cpim ⟨application/im-iscomposing+xml⟩")
		}
	}
	assert.Equal(t, []string{
		`alice: "Hi Bob! Are you there?"`, `bob: "Hi Alice, loud and clear."`,
		`alice: "Here is the photo from Saturday."`, `bob: "Got it, thanks! Talk soon."`,
	}, texts)
	var idle []event
	for _, e := range log.find("MSRP", "composing") {
		if strings.Contains(e.detail, "⟩ idle") {
			idle = append(idle, e)
		}
	}
	require.Len(t, idle, 1, "one idle indication: Bob's pause; a message makes its sender idle without one (RFC 3994)")
	assert.Equal(t, "bob", idle[0].from)
	assert.Contains(t, idle[0].detail, "last active ")
	var watched []string
	for _, e := range log.find("note", "composing") {
		watched = append(watched, e.from+": "+e.detail)
	}
	assert.Equal(t, []string{
		"bob: alice is typing…", "bob: alice stopped typing",
		"alice: bob is typing…", "alice: bob stopped typing", "alice: bob is typing…", "alice: bob stopped typing",
		"bob: alice is typing…", "bob: alice stopped typing",
		"alice: bob is typing…", "alice: bob stopped typing",
	}, watched)

	// The file: across, and as its selector says.
	files := log.find("MSRP", "file")
	require.Len(t, files, 1)
	assert.Contains(t, files[0].detail, `image/jpeg, `)
	assert.Contains(t, files[0].detail, `filename="photo.jpg"`)
	ok := log.find("note", "file ok")
	require.Len(t, ok, 1)
	assert.Contains(t, ok[0].detail, fmt.Sprintf("photo.jpg: %d bytes and sha-1:", o.fileSize))
	sent := log.find("note", "sent")
	require.Len(t, sent, 1)
	if o.aliceRelay != nil {
		assert.Contains(t, sent[0].detail, fmt.Sprintf("in %d chunks", (o.fileSize+8<<10-1)/(8<<10)), "8 KiB chunks through a relay")
	}

	var closed []string
	for _, e := range log.find("note", "closed") {
		closed = append(closed, e.from+": "+e.detail)
	}
	assert.ElementsMatch(t, []string{
		"alice: file session closed cleanly (Err() = nil)", "bob: file session closed cleanly (Err() = nil)",
		"alice: chat session closed cleanly (Err() = nil)", "bob: chat session closed cleanly (Err() = nil)",
	}, closed)
}

// TestSIPChat makes the whole call in-process, on loopback: SIP over UDP
// with Alice connecting (the offerer, as the answer says passive), and over
// TCP with Bob connecting after the ACK.
func TestSIPChat(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    options
	}{
		{"udp", options{transport: "udp"}},
		{"tcp, bob active", options{transport: "tcp", bobActive: true}},
	} {
		t.Run(tc.name, func(t *testing.T) { makeCall(t, tc.o) })
	}
}

// An offer Bob cannot take (no media type in common) is answered 488, as
// RFC 4975 §8.6 says, and no session is started.
func TestSIPChatRefusesAnOfferWithoutCommonType(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	log := &transcript{w: io.Discard}
	alice, err := newEndpoint(endpointConfig{name: "alice", transport: "udp"}, log)
	require.NoError(t, err)
	defer alice.Close()
	bobDone := make(chan error, 1)
	bob, err := newEndpoint(endpointConfig{name: "bob", transport: "udp", onInvite: func(c *incomingCall) {
		bobDone <- bobTakes(ctx, c.e, alice, c, false, make(chan *chatter, 1))
	}}, log)
	require.NoError(t, err)
	defer bob.Close()

	offer, err := alice.media.newOffer(ctx, &msrp.SDPMedia{AcceptTypes: []string{"application/x-private"}, Setup: msrp.SetupActPass})
	require.NoError(t, err)
	defer offer.cancel()
	_, err = alice.invite(ctx, bob, offer.sdp())
	var refused *sipgo.ErrDialogResponse
	require.ErrorAs(t, err, &refused)
	assert.Equal(t, 488, refused.Res.StatusCode)
	assert.ErrorIs(t, <-bobDone, msrp.ErrSDPNoCommonType)
	assert.Len(t, log.find("SIP", "488"), 1, log.String())
}

// TestSIPChatThroughKamailio makes the same call through Kamailio 5.6 as
// both the SIP proxy (stateless, Record-Route) and the MSRP relay, where
// Alice and Bob each reserve their sessions with AUTH: the MSRP goes
// Alice → relay → relay → Bob, in 8 KiB chunks.
func TestSIPChatThroughKamailio(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    options
	}{
		{"udp", options{transport: "udp", fileSize: 100000}},
		{"tcp, bob active", options{transport: "tcp", bobActive: true, fileSize: 50000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testrelay.ForTestWith(t, testrelay.Options{SIP: true}, func(err error) {
				interop.Skipped("the Kamailio SIP proxy and MSRP relay test", err.Error())
			})
			o := tc.o
			o.proxy, o.aliceRelay, o.bobRelay = kamailioSettings(r)
			makeCall(t, o)
			kamailio := r.Log()
			for _, method := range []string{"INVITE", "ACK", "BYE"} {
				assert.Contains(t, kamailio, "SIP "+method+" sip:", "Kamailio forwarded the %s", method)
			}
			assert.Contains(t, kamailio, "MSRP AUTH", "the sessions were reserved at the relay")
			assert.Contains(t, kamailio, "MSRP SEND", "and the chunks went through it")
		})
	}
}

// TestSIPChatTshark captures the plain call on loopback and has
// Wireshark's SIP and SDP dissectors, which nobody here wrote, decode it:
// the INVITEs, their 200s, the ACKs and BYEs, the SDP's m=message, a=path
// and a=file-selector, and no packet malformed.
func TestSIPChatTshark(t *testing.T) {
	tshark := interop.Tool(t, "the tshark decoding test", "apt-get install tshark", "tshark")
	alicePort, bobPort := freeUDPPort(t), freeUDPPort(t)
	capture := filepath.Join(t.TempDir(), "sipchat.pcapng")
	stopCapture := interop.Capture(t, tshark, fmt.Sprintf("udp port %d or udp port %d", alicePort, bobPort), capture)

	makeCall(t, options{transport: "udp", alicePort: alicePort, bobPort: bobPort, fileSize: 10000})
	time.Sleep(500 * time.Millisecond) // let the capture see the last packets
	stopCapture()

	decode := func(args ...string) string {
		out, err := exec.Command(tshark, append([]string{"-r", capture,
			"-d", fmt.Sprintf("udp.port==%d,sip", alicePort), "-d", fmt.Sprintf("udp.port==%d,sip", bobPort)}, args...)...).Output()
		require.NoError(t, err)
		return string(out)
	}
	assert.Empty(t, strings.TrimSpace(decode("-Y", "_ws.malformed")), "malformed packets")
	fields := decode("-Y", "sip", "-T", "fields", "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=;",
		"-e", "sip.Method", "-e", "sip.Status-Code", "-e", "sip.CSeq.method", "-e", "sdp.media", "-e", "sdp.media_attr")
	var seen []string
	var sdps []string
	for _, line := range strings.Split(strings.TrimSpace(fields), "\n") {
		cols := strings.Split(line, "|")
		require.Len(t, cols, 5, line)
		what := cols[0]
		if what == "" {
			what = cols[1] + " " + cols[2]
		}
		seen = append(seen, what)
		if cols[3] != "" {
			sdps = append(sdps, what+": m="+cols[3]+" "+cols[4])
		}
	}
	t.Logf("tshark decoded: %v", seen)
	// UDP: a 200 may be sent again until the ACK arrives; count what must be there.
	for what, n := range map[string]int{"INVITE": 2, "200 INVITE": 2, "ACK": 2, "BYE": 2, "200 BYE": 2} {
		assert.GreaterOrEqual(t, count(seen, what), n, "%s in %v", what, seen)
	}
	require.GreaterOrEqual(t, len(sdps), 4, "two offers and two answers")
	for _, s := range sdps {
		assert.Contains(t, s, "m=message ", s)
		assert.Contains(t, s, "TCP/MSRP *", s)
		assert.Contains(t, s, "path:msrp://127.0.0.1:", s)
	}
	assert.Contains(t, strings.Join(sdps, "\n"), `file-selector:name:"photo.jpg" type:image/jpeg size:10000 hash:sha-1:`)
}

func count(list []string, v string) int {
	n := 0
	for _, s := range list {
		if s == v {
			n++
		}
	}
	return n
}

// freeUDPPort returns a UDP port free on loopback a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}
