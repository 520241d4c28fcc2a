// Command p2pchat is MSRP over a WebRTC data channel (RFC 8873) between two
// Go peers, Alice and Bob, in one program, with pion on loopback.
//
// Their SDP offer and answer go from one to the other in memory, where SIP
// or any signalling would carry them. Each describes the MSRP channel as
// RFC 8873 wants: a data channel negotiated in SDP rather than opened in
// band (a=dcmap: stream 0, subprotocol "msrp"), with its MSRP attributes in
// a=dcsa lines, among them a=path and a=setup, which decides who sends the
// first SEND. Then they chat, and Alice sends Bob a file whose SHA-256 he
// checks.
//
//	go run ./examples/p2pchat
//	go run ./examples/p2pchat -size 16777216
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	pion "github.com/pion/webrtc/v4"

	"github.com/go-msrp/msrp"
	msrpwebrtc "github.com/go-msrp/msrp/webrtc"
)

func main() {
	size := flag.Int("size", 4<<20, "size in bytes of the file Alice sends")
	flag.Parse()
	if flag.NArg() > 0 || *size < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(os.Stdout, *size); err != nil {
		fmt.Fprintln(os.Stderr, "p2pchat:", err)
		os.Exit(1)
	}
}

// peer is one end: a peer connection with the MSRP data channel in it.
type peer struct {
	name    string
	say     func(format string, args ...any) // prints an event, one line
	pc      *pion.PeerConnection
	dc      *pion.DataChannel
	self    msrp.URI
	conn    *msrpwebrtc.Conn
	peerMax int // the peer's a=max-message-size: our largest data channel message
	session *msrp.MSRPSession
}

func newPeer(name string, say func(format string, args ...any)) (*peer, error) {
	// Loopback host candidates only, and no mDNS names: two peers in one
	// program need no network.
	var se pion.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetNetworkTypes([]pion.NetworkType{pion.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	pc, err := pion.NewAPI(pion.WithSettingEngine(se)).NewPeerConnection(pion.Configuration{})
	if err != nil {
		return nil, err
	}
	// Both ends make the channel themselves, with the stream id their SDP
	// gives it: no in-band DCEP open.
	negotiated, id, protocol := true, uint16(0), msrpwebrtc.Subprotocol
	dc, err := pc.CreateDataChannel("chat", &pion.DataChannelInit{Negotiated: &negotiated, ID: &id, Protocol: &protocol})
	if err != nil {
		pc.Close()
		return nil, err
	}
	// The data channel carries the messages, so the URI is a name only: as
	// over WebSocket, its host need not exist.
	self := msrp.URI{UseTLS: true, Host: name + ".invalid", Port: 9, SessionID: msrp.NewSessionID(), Transport: "dc"}
	return &peer{name: name, say: say, pc: pc, dc: dc, self: self}, nil
}

// describe makes p's offer or answer, waits for its candidates and
// returns the SDP with the MSRP channel in it: a=dcmap and a=dcsa lines.
func (p *peer) describe(offer bool, mine *msrp.SDPMedia) (string, error) {
	var desc pion.SessionDescription
	var err error
	if offer {
		desc, err = p.pc.CreateOffer(nil)
	} else {
		desc, err = p.pc.CreateAnswer(nil)
	}
	if err != nil {
		return "", err
	}
	gathered := pion.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(desc); err != nil {
		return "", err
	}
	<-gathered
	d, err := msrp.ParseSDP([]byte(p.pc.LocalDescription().SDP))
	if err != nil {
		return "", err
	}
	d.Media[0].SetDataChannels([]*msrp.SDPDataChannel{{StreamID: 0, Label: "chat", Subprotocol: msrpwebrtc.Subprotocol, MSRP: mine}})
	text := string(d.Marshal())
	for _, line := range strings.Split(text, "\r\n") {
		for _, prefix := range []string{"m=application", "a=max-message-size", "a=dcmap", "a=dcsa"} {
			if strings.HasPrefix(line, prefix) {
				p.say("%-5s SDP  %s", p.name, line)
			}
		}
	}
	return text, nil
}

// read takes the peer's SDP: its MSRP channel, and the largest data
// channel message it takes, which our Conn's chunks must fit. The Conn is
// made before the SDP is applied and the channel can open: a message that
// came before it would be lost.
func (p *peer) read(text string, typ pion.SDPType) (*msrp.SDPMedia, error) {
	d, err := msrp.ParseSDP([]byte(text))
	if err != nil {
		return nil, err
	}
	ch, err := d.Media[0].MSRPChannel(0)
	if err != nil {
		return nil, err
	}
	// The chunks fit the peer's a=max-message-size (webrtc.ChunkSize keeps
	// them to a few hundred KiB even when it says 1 GiB, as pion does).
	p.peerMax = d.Media[0].MaxMessageSize()
	if p.conn, err = msrpwebrtc.NewConn(p.dc, msrpwebrtc.Config{MaxMessageSize: p.peerMax}); err != nil {
		return nil, err
	}
	return ch.MSRP, p.pc.SetRemoteDescription(pion.SessionDescription{Type: typ, SDP: text})
}

// start binds the MSRP session over the channel once it is open, the
// active end (by the a=dcsa setup lines) sending the first SEND.
func (p *peer) start(ctx context.Context, local, remote *msrp.SDPMedia, offerer bool, cfg msrp.SessionConfig) error {
	n, err := msrp.NegotiateSDP(local, remote, offerer)
	if err != nil {
		return err
	}
	p.session, err = msrpwebrtc.StartSession(ctx, p.conn, p.self, n.RemotePath(), n.Active, n.SessionConfig(cfg))
	if err != nil {
		return err
	}
	how := "passive: answered the first SEND"
	if n.Active {
		how = "active: sent the first SEND"
	}
	p.say("%-5s MSRP session bound over data channel %s (%s)", p.name, p.conn.LocalAddr(), how)
	return nil
}

func run(w io.Writer, size int) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var mu sync.Mutex // bob binds on a goroutine of his own
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, format+"\n", args...)
	}
	alice, err := newPeer("alice", say)
	if err != nil {
		return err
	}
	defer alice.pc.Close()
	bob, err := newPeer("bob", say)
	if err != nil {
		return err
	}
	defer bob.pc.Close()
	types := []string{"text/plain", "application/octet-stream"}

	// Alice offers, and leaves it to Bob which of them binds the session.
	aliceMSRP := &msrp.SDPMedia{Path: []msrp.URI{alice.self}, AcceptTypes: types, Setup: msrp.SetupActPass}
	offer, err := alice.describe(true, aliceMSRP)
	if err != nil {
		return err
	}
	// Bob answers: AnswerSDP answers actpass with passive, so Alice binds.
	offered, err := bob.read(offer, pion.SDPTypeOffer)
	if err != nil {
		return err
	}
	bobMSRP, err := msrp.AnswerSDP(offered, &msrp.SDPMedia{Path: []msrp.URI{bob.self}, AcceptTypes: types})
	if err != nil {
		return err
	}
	answer, err := bob.describe(false, bobMSRP)
	if err != nil {
		return err
	}
	answered, err := alice.read(answer, pion.SDPTypeAnswer)
	if err != nil {
		return err
	}

	// ICE, DTLS and SCTP connect the peers; then MSRP binds the channel.
	cfg := msrp.SessionConfig{MessageConfig: msrp.MessageConfig{MaxMessageSize: int64(max(size, 1<<20))}}
	bobDone := make(chan error, 1)
	go func() { bobDone <- bob.start(ctx, bobMSRP, offered, false, cfg) }()
	if err := alice.start(ctx, aliceMSRP, answered, true, cfg); err != nil {
		return fmt.Errorf("alice: %w", err)
	}
	defer alice.session.Close()
	if err := <-bobDone; err != nil {
		return fmt.Errorf("bob: %w", err)
	}
	defer bob.session.Close()

	for _, line := range []struct {
		from, to *peer
		text     string
	}{
		{alice, bob, "Hi Bob! No server between us this time."},
		{bob, alice, "Hi Alice, just a data channel. Nice."},
		{alice, bob, "Here comes the file."},
		{bob, alice, "Ready."},
	} {
		if err := line.from.session.Send(ctx, "text/plain", []byte(line.text), msrp.MessageOptions{}); err != nil {
			return err
		}
		got, err := line.to.session.Receive(ctx)
		if err != nil {
			return err
		}
		say("%-5s → %-5s %q", line.from.name, line.to.name, got.Data)
	}

	file := make([]byte, size)
	rand.Read(file)
	sum := sha256.Sum256(file)
	say("alice sends a %d-byte file in chunks of up to %d bytes; sha256 %x", size, msrpwebrtc.ChunkSize(alice.peerMax), sum)
	if err := alice.session.Send(ctx, "application/octet-stream", file, msrp.MessageOptions{}); err != nil {
		return err
	}
	got, err := bob.session.Receive(ctx)
	if err != nil {
		return err
	}
	gotSum := sha256.Sum256(got.Data)
	if gotSum != sum {
		return fmt.Errorf("bob got a file with sha256 %x", gotSum)
	}
	say("bob   received the file: %d bytes; sha256 %x matches", len(got.Data), gotSum)

	// Alice hangs up; Bob sees the session end cleanly.
	if err := alice.session.Shutdown(ctx); err != nil {
		return err
	}
	<-bob.session.Done()
	if err := bob.session.Err(); err != nil {
		return fmt.Errorf("bob's session: %w", err)
	}
	say("alice hung up; bob's session ended cleanly")
	return nil
}
