// Command chat is the msrp package's demo: two MSRP endpoints in one
// program talk over a real loopback connection, as two SIP clients would
// once their SDP offer and answer have been exchanged.
//
// Bob runs an MSRPServer, the way a chat backend or a softphone serves many
// sessions on one port. Alice connects to him with a ConnectorDirect, or
// through an RFC 4976 relay. They exchange a few chat messages both ways,
// then Alice sends Bob a file of a few MiB, in chunks, with a progress
// display, and Bob checks its SHA-256.
//
//	go run ./examples/chat                 # TCP over 127.0.0.1
//	go run ./examples/chat -tls            # msrps; certificates checked by SDP-style fingerprints
//	go run ./examples/chat -relay 'msrp://alice:pw@127.0.0.1:2855'    # Alice through a relay
//	go run ./examples/chat -tls -relay 'msrps://alice:pw@127.0.0.1:2856' -relay-ca relay.crt
//	go run ./examples/chat -log            # with the MSRP traffic log on stderr
//
// go run ./internal/cmd/testrelay [-tls] runs a Kamailio relay to try it
// with, and prints the -relay (and -relay-ca) to give.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-msrp/msrp"
	"github.com/go-msrp/msrp/examples/internal/relaytrust"
)

// options are the demo's settings.
type options struct {
	useTLS     bool
	relay      *msrp.MSRPRelaySettings // nil: Alice connects to Bob directly
	size       int
	logTraffic bool
}

func main() {
	var o options
	flag.BoolVar(&o.useTLS, "tls", false, "use msrps, with self-signed certificates checked by fingerprint")
	relayURL := flag.String("relay", "", "send Alice through this RFC 4976 relay, as `msrp[s]://user:password@host:port`")
	relayCA := flag.String("relay-ca", "", "trust the relay's certificate by this PEM `file`")
	relayFP := flag.String("relay-fingerprint", "", "trust the relay's certificate by this a=fingerprint")
	flag.IntVar(&o.size, "size", 4<<20, "size in bytes of the file Alice sends")
	flag.BoolVar(&o.logTraffic, "log", false, "write the MSRP traffic log to stderr")
	flag.Parse()
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "chat:", err)
		flag.Usage()
		os.Exit(2)
	}
	if flag.NArg() > 0 || o.size < 0 {
		fail(errors.New("no arguments, and a -size of 0 or more"))
	}
	if *relayURL != "" {
		var err error
		if o.relay, err = msrp.ParseRelaySettings(*relayURL); err != nil {
			fail(err)
		}
		if o.relay.TLSConfig, err = relaytrust.TLSConfig(*relayCA, *relayFP); err != nil {
			fail(err)
		}
	} else if *relayCA != "" || *relayFP != "" {
		fail(errors.New("-relay-ca and -relay-fingerprint go with -relay"))
	}
	if err := run(os.Stdout, o); err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
}

// peer is one side of the chat.
type peer struct {
	name    string
	session *msrp.MSRPSession
	mu      sync.Mutex
	files   map[string]*countingHash // files being received, by Message-ID
}

func run(out io.Writer, o options) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	useTLS, relay := o.useTLS, o.relay
	var bobCfg, aliceCfg msrp.ConnectConfig
	if o.logTraffic {
		h := slog.NewTextHandler(os.Stderr, nil)
		bobCfg.Logger = &msrp.Logger{Slog: slog.New(h), Prefix: "[bob] ", LogTraffic: true}
		aliceCfg.Logger = &msrp.Logger{Slog: slog.New(h), Prefix: "[alice] ", LogTraffic: true}
	}
	if useTLS {
		if err := fingerprintTLS(out, &bobCfg, &aliceCfg, relay != nil); err != nil {
			return err
		}
	}

	// Bob's server, and the session he expects. Its path goes in his SDP.
	server := &msrp.MSRPServer{ConnectConfig: bobCfg}
	defer server.Close()
	bobSession := server.Acceptor(msrp.ServerAcceptorConfig{})
	defer bobSession.Cleanup()
	bobPath, err := bobSession.Prepare(ctx, msrp.URI{Host: "127.0.0.1", UseTLS: useTLS})
	if err != nil {
		return err
	}
	// Alice's side: direct, or through the relay.
	connector := msrp.GetConnector(relay, aliceCfg)
	defer connector.Cleanup()
	alicePath, err := connector.Prepare(ctx, msrp.URI{Host: "127.0.0.1", UseTLS: useTLS})
	if err != nil {
		return fmt.Errorf("alice could not prepare: %w", err)
	}
	fmt.Fprintf(out, "alice's SDP: a=path:%s\n", msrp.FormatPath(alicePath))
	fmt.Fprintf(out, "bob's SDP:   a=path:%s\n", msrp.FormatPath(bobPath))

	// Offer and answer done: Alice connects, Bob's server hands him the session.
	alice, bob := &peer{name: "alice"}, &peer{name: "bob"}
	bobDone := make(chan error, 1)
	go func() { bobDone <- bob.start(ctx, bobSession, alicePath) }()
	if err := alice.start(ctx, connector, bobPath); err != nil {
		return fmt.Errorf("alice could not connect: %w", err)
	}
	defer alice.session.Close()
	if err := <-bobDone; err != nil {
		return fmt.Errorf("bob saw no session: %w", err)
	}
	defer bob.session.Close()
	via := "directly"
	if relay != nil {
		via = "through the relay " + relay.String()
	}
	fmt.Fprintf(out, "session up: alice is connected to bob %s\n\n", via)

	for _, line := range []struct {
		from, to *peer
		text     string
	}{
		{alice, bob, "Hi Bob! Are you there?"},
		{bob, alice, "Hi Alice, loud and clear."},
		{alice, bob, "I'm sending you the photos now."},
		{bob, alice, "Great, go ahead."},
	} {
		if err := line.from.session.Send(ctx, "text/plain", []byte(line.text), msrp.MessageOptions{}); err != nil {
			return err
		}
		got, err := line.to.session.Receive(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%-5s → %-5s %q (delivered, 200 OK)\n", line.from.name, line.to.name, got.Data)
	}
	fmt.Fprintln(out)
	return sendFile(ctx, out, alice, bob, o.size)
}

// start runs the peer's session: text stays in memory, a file streams into
// a hash and is never held whole.
func (p *peer) start(ctx context.Context, c msrp.Connector, remote []msrp.URI) (err error) {
	p.files = map[string]*countingHash{}
	p.session, err = msrp.StartSession(ctx, c, remote, msrp.SessionConfig{
		AcceptTypes: []string{"text/plain", "application/octet-stream"},
		MessageConfig: msrp.MessageConfig{
			MessageWriter: func(_ *msrp.MSRPSession, m *msrp.IncomingMessage) io.Writer {
				if strings.HasPrefix(m.ContentType, "text/") {
					return nil
				}
				h := &countingHash{h: sha256.New()}
				p.mu.Lock()
				p.files[m.MessageID] = h
				p.mu.Unlock()
				return h
			},
		},
	})
	return err
}

// file returns the hash a received file went into.
func (p *peer) file(m *msrp.IncomingMessage) *countingHash {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := p.files[m.MessageID]
	delete(p.files, m.MessageID)
	return h
}

func sendFile(ctx context.Context, out io.Writer, from, to *peer, size int) error {
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	fmt.Fprintf(out, "%s sends %s a %s file (SHA-256 %x…)\n", from.name, to.name, humanSize(int64(size)), sum[:6])
	last := -1
	shownAll := make(chan struct{}) // progress comes on the session's callback goroutine
	m, err := from.session.SendMessage(bytes.NewReader(data), int64(size), "application/octet-stream", msrp.MessageOptions{
		OnProgress: func(sent, total int64) {
			if pct := int(100 * sent / max(total, 1)); pct/25 != last/25 || sent == total {
				last = pct
				fmt.Fprintf(out, "  sent %3d%%  %s of %s\n", pct, humanSize(sent), humanSize(total))
			}
			if sent == total {
				close(shownAll)
			}
		},
	})
	if err != nil {
		return err
	}
	if err := m.Wait(ctx); err != nil {
		return fmt.Errorf("the file was not delivered: %w", err)
	}
	<-shownAll
	got, err := to.session.Receive(ctx)
	if err != nil {
		return fmt.Errorf("%s did not receive the file: %w", to.name, err)
	}
	h := to.file(got)
	if !bytes.Equal(h.h.Sum(nil), sum[:]) || h.n != int64(size) {
		return errors.New("the file arrived corrupted: its SHA-256 differs")
	}
	fmt.Fprintf(out, "%s received %s; SHA-256 %x… matches\n\n", to.name, humanSize(h.n), sum[:6])
	// Each side ends its own session, as a SIP BYE would tell it to: a
	// relay between them need not close one connection when the other ends.
	if err := from.session.Shutdown(ctx); err != nil {
		return err
	}
	if err := to.session.Shutdown(ctx); err != nil {
		return err
	}
	fmt.Fprintln(out, "session closed cleanly; done.")
	return nil
}

type countingHash struct {
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// fingerprintTLS gives Bob and Alice fresh self-signed certificates and has
// each check the other's against its fingerprint, as SDP a=fingerprint
// would carry it (RFC 4975 §14.4): no CA is involved. Through a relay, TLS
// runs hop by hop: the relay, not Alice, connects to Bob, so Bob asks for
// no client certificate, and Alice checks the relay's (Relay.TLSConfig).
func fingerprintTLS(out io.Writer, bobCfg, aliceCfg *msrp.ConnectConfig, viaRelay bool) error {
	bobCert, err := msrp.SelfSignedCertificate("127.0.0.1")
	if err != nil {
		return err
	}
	aliceCert, err := msrp.SelfSignedCertificate("alice")
	if err != nil {
		return err
	}
	bobFP, err := msrp.CertificateFingerprint(bobCert.Certificate[0], "sha-256")
	if err != nil {
		return err
	}
	aliceFP, err := msrp.CertificateFingerprint(aliceCert.Certificate[0], "sha-256")
	if err != nil {
		return err
	}
	checkBob, err := msrp.VerifyFingerprint(bobFP)
	if err != nil {
		return err
	}
	checkAlice, err := msrp.VerifyFingerprint(aliceFP)
	if err != nil {
		return err
	}
	if viaRelay {
		fmt.Fprintf(out, "bob's SDP:   a=fingerprint:%s\n", bobFP)
		bobCfg.TLSConfig = &tls.Config{Certificates: []tls.Certificate{bobCert}}
		return nil
	}
	fmt.Fprintf(out, "alice's SDP: a=fingerprint:%s\nbob's SDP:   a=fingerprint:%s\n", aliceFP, bobFP)
	bobCfg.TLSConfig = &tls.Config{
		Certificates: []tls.Certificate{bobCert}, ClientAuth: tls.RequireAnyClientCert,
		InsecureSkipVerify: true, VerifyConnection: checkAlice, // the fingerprint does the checking
	}
	aliceCfg.TLSConfig = &tls.Config{
		Certificates: []tls.Certificate{aliceCert}, InsecureSkipVerify: true, VerifyConnection: checkBob,
	}
	return nil
}
