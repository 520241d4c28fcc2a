// Command msrpcat is netcat for MSRP, for testing SIP equipment and MSRP
// stacks by hand or from scripts.
//
//	msrpcat listen [flags]
//	msrpcat connect [flags] '<a=path URIs>'
//
// listen prints its a=path (and a=fingerprint with --tls) on stderr, with
// the command that connects to it, and waits for a peer; without --peer it
// takes the first peer that names its session; with --ws it serves MSRP
// over WebSocket (RFC 7977) on --addr instead of TCP. connect binds to the
// given a=path, directly or through an RFC 4976 relay; an a=path whose
// first URI has transport ws, or a ws:// or wss:// relay, is reached over
// WebSocket (--ws-path names the URL's path). Then each line typed on
// stdin goes out as a text/plain message, and each text message that
// arrives is printed on stdout after "peer> "; a file that arrives is
// reported with its size and SHA-256, and saved in --out's folder if given.
// --file sends a file first, with a progress bar. The session ends at the
// end of stdin or on Ctrl-C, gracefully. -h describes every flag; bad
// arguments exit with status 2.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-msrp/msrp"
	"github.com/go-msrp/msrp/examples/internal/relaytrust"
	"github.com/go-msrp/msrp/ws"
)

type options struct {
	mode        string
	useTLS      bool
	addr        string
	peer        []msrp.URI
	file        string
	out         string
	force       bool
	logTraffic  bool
	fingerprint string
	relay       *msrp.MSRPRelaySettings
	remote      []msrp.URI
	webSocket   bool   // listen: serve MSRP over WebSocket
	wsPath      string // the path of WebSocket URLs
}

func main() {
	opts, err := parseArgs(os.Args[1:], os.Stdout)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return
	case err != nil:
		fmt.Fprintln(os.Stderr, "msrpcat:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, opts, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "msrpcat:", err)
		os.Exit(1)
	}
}

const usage = `usage: msrpcat listen [flags]
       msrpcat connect [flags] '<the peer's a=path URIs>'
Run "msrpcat listen -h" or "msrpcat connect -h" for the flags of each.`

// parseArgs reads the command line. -h prints the usage on help and
// returns flag.ErrHelp; any other error is the caller's to report, with
// status 2.
func parseArgs(args []string, help io.Writer) (*options, error) {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprintln(help, usage)
		return nil, flag.ErrHelp
	}
	if len(args) == 0 || (args[0] != "listen" && args[0] != "connect") {
		return nil, fmt.Errorf("want listen or connect\n%s", usage)
	}
	o := &options{mode: args[0]}
	fs := flag.NewFlagSet("msrpcat "+o.mode, flag.ContinueOnError)
	var flagErrors strings.Builder
	fs.SetOutput(&flagErrors)
	var peer, relay, relayCA, relayFP string
	if o.mode == "listen" {
		fs.BoolVar(&o.useTLS, "tls", false, "listen for msrps, with a fresh self-signed certificate")
		fs.StringVar(&o.addr, "addr", "127.0.0.1:0", "`host:port` to listen on; port 0 picks a free one")
		fs.StringVar(&peer, "peer", "", "the peer's a=path; without it, the first peer that names our session is taken")
		fs.StringVar(&o.fingerprint, "tls-fingerprint", "", "with --tls: take only a peer whose certificate has this a=fingerprint")
		fs.BoolVar(&o.webSocket, "ws", false, "serve MSRP over WebSocket (RFC 7977; wss with --tls) on --addr, at --ws-path")
	} else {
		fs.StringVar(&o.fingerprint, "tls-fingerprint", "", "for msrps: accept the peer's certificate by this a=fingerprint (as listen prints it) instead of a CA")
		fs.StringVar(&relay, "relay", "", "go through this RFC 4976 relay: `msrp[s]://user:password@host[:port]`, or ws[s]:// for one reached over WebSocket")
		fs.StringVar(&relayCA, "relay-ca", "", "trust the relay's certificate by this PEM `file`")
		fs.StringVar(&relayFP, "relay-fingerprint", "", "trust the relay's certificate by this a=fingerprint")
	}
	fs.StringVar(&o.wsPath, "ws-path", "/", "the `path` of the WebSocket URL, served or dialled")
	fs.StringVar(&o.file, "file", "", "send this `file` first")
	fs.StringVar(&o.out, "out", "", "save files that arrive in this `folder`")
	fs.BoolVar(&o.force, "force", false, "with --out: overwrite a file of the same name")
	fs.BoolVar(&o.logTraffic, "log", false, "write the MSRP traffic log to stderr")
	fs.Usage = func() {
		w := fs.Output()
		if o.mode == "listen" {
			fmt.Fprintln(w, "usage: msrpcat listen [flags]")
		} else {
			fmt.Fprintln(w, "usage: msrpcat connect [flags] '<the peer's a=path URIs>'")
		}
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(help)
			fs.Usage()
			return nil, err
		}
		return nil, errors.New(strings.TrimSpace(flagErrors.String()))
	}
	o.fingerprint = relaytrust.Fingerprint(o.fingerprint)
	if o.fingerprint != "" {
		if _, err := msrp.VerifyFingerprint(o.fingerprint); err != nil {
			return nil, fmt.Errorf("--tls-fingerprint: %v", err)
		}
	}
	var err error
	switch o.mode {
	case "listen":
		if fs.NArg() > 0 {
			return nil, fmt.Errorf("listen takes no arguments, got %q", fs.Args())
		}
		host, port, err := net.SplitHostPort(o.addr)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 || host == "" {
			return nil, fmt.Errorf("--addr %q: want host:port, with a port from 0 to 65535", o.addr)
		}
		if peer != "" {
			if o.peer, err = msrp.ParsePath(strings.TrimPrefix(peer, "a=path:")); err != nil {
				return nil, fmt.Errorf("--peer: %v", err)
			}
		}
		if o.fingerprint != "" && !o.useTLS {
			return nil, errors.New("--tls-fingerprint checks a TLS peer: add --tls")
		}
	case "connect":
		if fs.NArg() == 0 {
			return nil, errors.New("connect needs the peer's a=path URIs")
		}
		if o.remote, err = msrp.ParsePath(strings.TrimPrefix(strings.Join(fs.Args(), " "), "a=path:")); err != nil {
			return nil, err
		}
		if relay != "" {
			if o.relay, err = msrp.ParseRelaySettings(relay); err != nil {
				return nil, err
			}
			if o.relay.TLSConfig, err = relaytrust.TLSConfig(relayCA, relayFP); err != nil {
				return nil, err
			}
		} else if relayCA != "" || relayFP != "" {
			return nil, errors.New("--relay-ca and --relay-fingerprint go with --relay")
		}
	}
	if o.file != "" {
		if info, err := os.Stat(o.file); err != nil {
			return nil, err
		} else if !info.Mode().IsRegular() {
			return nil, fmt.Errorf("--file %q is not a file", o.file)
		}
	}
	if o.out != "" {
		if info, err := os.Stat(o.out); err != nil || !info.IsDir() {
			return nil, fmt.Errorf("--out %q is not a folder", o.out)
		}
	} else if o.force {
		return nil, errors.New("--force goes with --out")
	}
	return o, nil
}

// run sets the session up, then copies stdin lines out and incoming text
// to stdout until stdin ends or ctx is cancelled.
func run(ctx context.Context, o *options, stdin io.Reader, stdout, stderr io.Writer) error {
	var out sync.Mutex // stdout and stderr lines from several goroutines
	printf := func(w io.Writer, format string, args ...any) {
		out.Lock()
		defer out.Unlock()
		fmt.Fprintf(w, format, args...)
	}
	say := func(format string, args ...any) { printf(stderr, "msrpcat: "+format+"\n", args...) }
	var cfg msrp.ConnectConfig
	if o.logTraffic {
		cfg.Logger = &msrp.Logger{Slog: slog.New(slog.NewTextHandler(stderr, nil)), LogTraffic: true}
	} else {
		cfg.Logger = &msrp.Logger{Slog: slog.New(refusals{say})}
	}
	files := newReceiver(o.out, o.force, say)
	s, err := startSession(ctx, o, cfg, msrp.SessionConfig{MessageConfig: msrp.MessageConfig{MessageWriter: files.writer}}, say)
	if err != nil {
		return err
	}
	defer s.Close()
	t := s.Transport()
	say("session up with %s, connected from %s", msrp.FormatPath(t.FullRemotePath()), t.RemoteAddr())
	// Incoming messages: text to stdout, files to --out. received is closed
	// once the session has ended and every message is out.
	received := make(chan struct{})
	go func() {
		defer close(received)
		for m, err := s.Receive(context.Background()); m != nil; m, err = s.Receive(context.Background()) {
			switch {
			case files.done(m):
			case err != nil:
				say("message %s failed: %v", m.MessageID, err)
			default:
				for _, line := range strings.Split(strings.TrimRight(string(m.Data), "\r\n"), "\n") {
					printf(stdout, "peer> %s\n", strings.TrimRight(line, "\r"))
				}
			}
		}
	}()

	if o.file != "" {
		if err := sendFile(ctx, s, o.file, func(format string, args ...any) { printf(stderr, format, args...) }); err != nil {
			return err
		}
	}

	lines := make(chan string)
	go func() { // stdin may block forever; this goroutine ends with the process
		defer close(lines)
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				return shutdown(s)
			}
			if err := s.Send(ctx, "text/plain", []byte(line), msrp.MessageOptions{}); err != nil && ctx.Err() == nil {
				say("line not delivered: %v", err)
			}
		case <-received:
			if err := s.Err(); err != nil { // the end lost something
				return fmt.Errorf("session ended: %w", err)
			}
			say("the peer closed the session")
			return nil
		case <-ctx.Done():
			say("interrupted, closing")
			return shutdown(s)
		}
	}
}

// shutdown ends the session gracefully within a few seconds.
func shutdown(s *msrp.MSRPSession) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// refusals is a log handler that reports, one line each, the connections
// the library turned away: a peer whose TLS handshake or paths were wrong.
type refusals struct{ say func(string, ...any) }

func (refusals) Enabled(context.Context, slog.Level) bool { return true }
func (h refusals) WithAttrs([]slog.Attr) slog.Handler     { return h }
func (h refusals) WithGroup(string) slog.Handler          { return h }

func (h refusals) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "refused connection" {
		return nil
	}
	var from, why string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "from":
			from = a.Value.String()
		case "error":
			why = a.Value.String()
		}
		return true
	})
	h.say("refused a connection from %s: %s", from, why)
	return nil
}

// startSession listens or connects, and starts the session.
func startSession(ctx context.Context, o *options, cfg msrp.ConnectConfig, scfg msrp.SessionConfig, say func(string, ...any)) (*msrp.MSRPSession, error) {
	useTLS := o.useTLS || (o.mode == "connect" && o.remote[len(o.remote)-1].UseTLS)
	var ourFingerprint string
	if useTLS { // our own certificate: the peer may pin it by its fingerprint
		host := "127.0.0.1"
		if o.mode == "listen" {
			host, _, _ = net.SplitHostPort(o.addr)
		}
		cert, err := msrp.SelfSignedCertificate(host)
		if err != nil {
			return nil, err
		}
		if ourFingerprint, err = msrp.CertificateFingerprint(cert.Certificate[0], "sha-256"); err != nil {
			return nil, err
		}
		cfg.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		if o.fingerprint != "" {
			verify, _ := msrp.VerifyFingerprint(o.fingerprint)
			cfg.TLSConfig.InsecureSkipVerify, cfg.TLSConfig.VerifyConnection = true, verify
			if o.mode == "listen" {
				cfg.TLSConfig.ClientAuth = tls.RequireAnyClientCert
			}
		}
	}
	if o.mode == "listen" && o.webSocket {
		acceptor, err := listenWebSocket(ctx, o, cfg, ourFingerprint, say)
		if err != nil {
			return nil, err
		}
		return msrp.StartSession(ctx, acceptor, o.peer, scfg)
	}
	if o.mode == "listen" {
		acceptor, err := listen(ctx, o, cfg, ourFingerprint, say)
		if err != nil {
			return nil, err
		}
		return msrp.StartSession(ctx, acceptor, o.peer, scfg)
	}
	// A WebSocket peer or relay: dialled with the TLS settings that would
	// check it over TCP.
	wsTLS := cfg.TLSConfig
	if o.relay != nil {
		wsTLS = o.relay.TLSConfig
	}
	dialer := &ws.Dialer{Path: o.wsPath}
	if wsTLS != nil {
		dialer.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: wsTLS.Clone()}}
	}
	cfg.DialMessage = dialer.DialMessage
	connector := msrp.GetConnector(o.relay, cfg)
	local := msrp.URI{Host: "127.0.0.1", UseTLS: useTLS}
	if o.relay == nil && o.remote[0].IsWebSocket() {
		local = msrp.WebSocketClientURI(useTLS) // RFC 7977: a client nobody connects to
	}
	path, err := connector.Prepare(ctx, local)
	if err != nil {
		return nil, err
	}
	say("our a=path:%s", msrp.FormatPath(path))
	if o.relay == nil {
		say("(we connect: our URI's port is a placeholder that RFC 4975 asks for; nothing listens on it)")
	}
	if useTLS {
		say("our a=fingerprint:%s", ourFingerprint)
	}
	s, err := msrp.StartSession(ctx, connector, o.remote, scfg)
	var unknown x509.UnknownAuthorityError
	if errors.As(err, &unknown) && o.fingerprint == "" {
		return nil, fmt.Errorf("%w\n(a peer with a self-signed certificate is checked by the a=fingerprint it gives: pass it with --tls-fingerprint)", err)
	}
	return s, err
}

// listen prepares a fresh listener for the peer, and prints the command
// that connects to it.
func listen(ctx context.Context, o *options, cfg msrp.ConnectConfig, ourFingerprint string, say func(string, ...any)) (msrp.Connector, error) {
	host, port, _ := net.SplitHostPort(o.addr)
	p, _ := strconv.Atoi(port)
	cfg.ConnectTimeout = 24 * time.Hour // wait for the peer as long as it takes; Ctrl-C ends it
	acceptor := &msrp.AcceptorDirect{ConnectConfig: cfg}
	path, err := acceptor.Prepare(ctx, msrp.URI{Host: host, Port: p, UseTLS: o.useTLS})
	if err != nil {
		acceptor.Cleanup()
		return nil, err
	}
	say("a=path:%s", msrp.FormatPath(path))
	connect := "msrpcat connect"
	if o.useTLS {
		say("a=fingerprint:%s", ourFingerprint)
		connect += " --tls-fingerprint '" + ourFingerprint + "'"
	}
	say("to connect: %s '%s'", connect, msrp.FormatPath(path))
	return acceptor, nil
}

// listenWebSocket serves MSRP over WebSocket on --addr and prepares a
// session there, and prints the command that connects to it.
func listenWebSocket(ctx context.Context, o *options, cfg msrp.ConnectConfig, ourFingerprint string, say func(string, ...any)) (msrp.Connector, error) {
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return nil, err
	}
	srv := &msrp.MSRPServer{ConnectConfig: cfg}
	srv.ConnectTimeout = 24 * time.Hour // as for listen: wait for the peer
	mux := http.NewServeMux()
	mux.Handle(o.wsPath, &ws.Handler{Server: srv})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: msrp.DefaultTimeout}
	if o.useTLS {
		hs.TLSConfig = cfg.TLSConfig
		go hs.ServeTLS(ln, "", "")
	} else {
		go hs.Serve(ln)
	}
	host, _, _ := net.SplitHostPort(o.addr)
	port := ln.Addr().(*net.TCPAddr).Port
	a := srv.Acceptor(msrp.ServerAcceptorConfig{})
	path, err := a.Prepare(ctx, msrp.URI{Host: host, Port: port, UseTLS: o.useTLS, Transport: "ws"})
	if err != nil {
		hs.Close()
		return nil, err
	}
	say("serving MSRP over WebSocket at %s", ws.URL(path[0], o.wsPath))
	say("a=path:%s", msrp.FormatPath(path))
	connect := "msrpcat connect"
	if o.useTLS {
		say("a=fingerprint:%s", ourFingerprint)
		connect += " --tls-fingerprint '" + ourFingerprint + "'"
	}
	if o.wsPath != "/" {
		connect += " --ws-path '" + o.wsPath + "'"
	}
	say("to connect: %s '%s'", connect, msrp.FormatPath(path))
	return &webSocketAcceptor{ServerAcceptor: a, srv: srv, http: hs}, nil
}

// webSocketAcceptor is a session's acceptor on a server of its own, which
// its Cleanup stops.
type webSocketAcceptor struct {
	*msrp.ServerAcceptor
	srv  *msrp.MSRPServer
	http *http.Server
}

func (a *webSocketAcceptor) Cleanup() error {
	err := a.ServerAcceptor.Cleanup()
	a.http.Close()
	a.srv.Close()
	return err
}

// sendFile sends a file with a progress bar and reports its SHA-256.
func sendFile(ctx context.Context, s *msrp.MSRPSession, name string, printf func(string, ...any)) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	h := sha256.New()
	shownAll := make(chan struct{}) // progress comes on the session's callback goroutine
	m, err := s.SendMessage(io.TeeReader(f, h), info.Size(), "application/octet-stream", msrp.MessageOptions{
		Headers: msrp.Header{{Name: "Content-Disposition", Value: fmt.Sprintf("attachment; filename=%q", info.Name())}},
		OnProgress: func(sent, total int64) {
			const width = 30
			done := int(width * sent / max(total, 1))
			printf("\rmsrpcat: [%s%s] %3d%% %d/%d bytes", strings.Repeat("#", done), strings.Repeat(" ", width-done), 100*sent/max(total, 1), sent, total)
			if sent == total {
				close(shownAll)
			}
		},
	})
	if err != nil {
		return err
	}
	if err := m.Wait(ctx); err != nil {
		printf("\n")
		return fmt.Errorf("file not delivered: %w", err)
	}
	<-shownAll
	printf("\nmsrpcat: sent %s, %d bytes, SHA-256 %x\n", info.Name(), info.Size(), h.Sum(nil))
	return nil
}
