// Command msrpcat is netcat for MSRP, for testing SIP equipment and MSRP
// stacks by hand or from scripts.
//
//	msrpcat listen [--tls] [--addr host:port] [--peer "<a=path>"] [--file F] [--log]
//	msrpcat connect [--tls-fingerprint "sha-256 AB:..."] [--relay msrp[s]://user:pass@host:port] [--file F] [--log] <a=path URIs>
//
// listen prints its a=path (and a=fingerprint with --tls) on stderr and
// waits for a peer; without --peer it takes the first peer that names its
// session. connect binds to the given a=path, directly or through an RFC
// 4976 relay. Then each line typed on stdin goes out as a text/plain
// message, and each text message that arrives is printed on stdout; a file
// that arrives is reported with its size and SHA-256. --file sends a file
// first, with a progress bar and its SHA-256. The session ends at the end
// of stdin or on Ctrl-C, gracefully. Bad arguments exit with status 2.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-msrp/msrp"
)

type options struct {
	mode        string
	useTLS      bool
	addr        string
	peer        []msrp.URI
	file        string
	logTraffic  bool
	fingerprint string
	relay       *msrp.MSRPRelaySettings
	remote      []msrp.URI
}

func main() {
	opts, err := parseArgs(os.Args[1:])
	if err != nil {
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

const usage = `usage: msrpcat listen [--tls] [--addr host:port] [--peer "<a=path>"] [--file F] [--log]
       msrpcat connect [--tls-fingerprint "sha-256 AB:..."] [--relay msrp[s]://user:pass@host:port] [--file F] [--log] <a=path URIs>`

func parseArgs(args []string) (*options, error) {
	if len(args) == 0 || (args[0] != "listen" && args[0] != "connect") {
		return nil, errors.New("want listen or connect\n" + usage)
	}
	o := &options{mode: args[0]}
	fs := flag.NewFlagSet("msrpcat "+o.mode, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.file, "file", "", "send this file first")
	fs.BoolVar(&o.logTraffic, "log", false, "write the MSRP traffic log to stderr")
	var peer, relay string
	if o.mode == "listen" {
		fs.BoolVar(&o.useTLS, "tls", false, "listen for msrps, with a fresh self-signed certificate")
		fs.StringVar(&o.addr, "addr", "127.0.0.1:0", "address to listen on")
		fs.StringVar(&peer, "peer", "", "the peer's a=path; without it, the first peer that names our session is taken")
	} else {
		fs.StringVar(&o.fingerprint, "tls-fingerprint", "", "for msrps: accept the peer's certificate by this a=fingerprint instead of a CA")
		fs.StringVar(&relay, "relay", "", "go through this RFC 4976 relay: msrp[s]://user:password@host[:port]")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return nil, err
	}
	var err error
	switch o.mode {
	case "listen":
		if fs.NArg() > 0 {
			return nil, fmt.Errorf("listen takes no arguments, got %q", fs.Args())
		}
		if _, _, err := net.SplitHostPort(o.addr); err != nil {
			return nil, fmt.Errorf("--addr %q: %v", o.addr, err)
		}
		if peer != "" {
			if o.peer, err = msrp.ParsePath(strings.TrimPrefix(peer, "a=path:")); err != nil {
				return nil, fmt.Errorf("--peer: %v", err)
			}
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
		}
		if o.fingerprint != "" {
			if _, err := msrp.VerifyFingerprint(o.fingerprint); err != nil {
				return nil, err
			}
		}
	}
	if o.file != "" {
		if _, err := os.Stat(o.file); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// run sets the session up, then copies stdin lines out and incoming text
// to stdout until stdin ends or ctx is cancelled.
func run(ctx context.Context, o *options, stdin io.Reader, stdout, stderr io.Writer) error {
	var cfg msrp.ConnectConfig
	if o.logTraffic {
		cfg.Logger = &msrp.Logger{Slog: slog.New(slog.NewTextHandler(stderr, nil)), LogTraffic: true}
	}
	t, err := setUp(ctx, o, cfg, stderr)
	if err != nil {
		return err
	}
	var out sync.Mutex // stdout and stderr lines from several goroutines
	printf := func(w io.Writer, format string, args ...any) {
		out.Lock()
		defer out.Unlock()
		fmt.Fprintf(w, format, args...)
	}
	files := map[string]hash.Hash{}
	s := msrp.NewMSRPSession(t, msrp.SessionConfig{MessageConfig: msrp.MessageConfig{
		MessageWriter: func(_ *msrp.MSRPSession, m *msrp.IncomingMessage) io.Writer {
			if strings.HasPrefix(m.ContentType, "text/") {
				return nil
			}
			h := sha256.New()
			files[m.MessageID] = h
			return h
		},
		OnMessage: func(_ *msrp.MSRPSession, m *msrp.IncomingMessage) {
			h := files[m.MessageID]
			delete(files, m.MessageID)
			switch {
			case m.Err != nil:
				printf(stderr, "msrpcat: message %s failed: %v\n", m.MessageID, m.Err)
			case h == nil:
				printf(stdout, "%s\n", strings.TrimRight(string(m.Data), "\r\n"))
			default:
				printf(stderr, "msrpcat: received a file (%s), %d bytes, SHA-256 %x\n", m.ContentType, m.Received, h.Sum(nil))
			}
		},
	}})
	defer s.Close()
	printf(stderr, "msrpcat: session up with %s\n", msrp.FormatPath(t.FullRemotePath()))

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
			m, err := s.SendMessage(strings.NewReader(line), int64(len(line)), "text/plain", msrp.MessageOptions{})
			if err != nil {
				return err
			}
			if err := m.Wait(ctx); err != nil && ctx.Err() == nil {
				printf(stderr, "msrpcat: line not delivered: %v\n", err)
			}
		case <-s.Done():
			if err := s.Err(); err != nil { // the end lost something
				return fmt.Errorf("session ended: %w", err)
			}
			printf(stderr, "msrpcat: the peer closed the session\n")
			return nil
		case <-ctx.Done():
			printf(stderr, "msrpcat: interrupted, closing\n")
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

// setUp listens or connects and returns the bound transport.
func setUp(ctx context.Context, o *options, cfg msrp.ConnectConfig, stderr io.Writer) (*msrp.MSRPTransport, error) {
	if o.mode == "listen" {
		host, port, _ := net.SplitHostPort(o.addr)
		p, _ := strconv.Atoi(port)
		local := msrp.URI{Host: host, Port: p, UseTLS: o.useTLS}
		if o.useTLS {
			cert, err := msrp.SelfSignedCertificate(host)
			if err != nil {
				return nil, err
			}
			fp, err := msrp.CertificateFingerprint(cert.Certificate[0], "sha-256")
			if err != nil {
				return nil, err
			}
			cfg.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
			fmt.Fprintf(stderr, "a=fingerprint:%s\n", fp)
		}
		cfg.ConnectTimeout = 24 * time.Hour // wait for the peer as long as it takes; Ctrl-C ends it
		acceptor := &msrp.AcceptorDirect{ConnectConfig: cfg}
		defer acceptor.Cleanup()
		path, err := acceptor.Prepare(ctx, local)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(stderr, "a=path:%s\n", msrp.FormatPath(path))
		return acceptor.Complete(ctx, o.peer)
	}
	if o.fingerprint != "" {
		verify, _ := msrp.VerifyFingerprint(o.fingerprint)
		cfg.TLSConfig = &tls.Config{InsecureSkipVerify: true, VerifyConnection: verify}
	}
	if o.relay != nil {
		o.relay.TLSConfig = cfg.TLSConfig
	}
	connector := msrp.GetConnector(o.relay, cfg)
	defer connector.Cleanup()
	path, err := connector.Prepare(ctx, msrp.URI{Host: "127.0.0.1", UseTLS: o.remote[len(o.remote)-1].UseTLS})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "a=path:%s\n", msrp.FormatPath(path))
	return connector.Complete(ctx, o.remote)
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
