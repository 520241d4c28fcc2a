// Command webchat is a browser chat with a Go backend over MSRP over
// WebSocket (RFC 7977). The page's own JavaScript, webchat.js, speaks MSRP
// by hand, with no library: it names itself with a random msrp URI in
// ".invalid", asks the backend for a session, binds the WebSocket with an
// empty SEND, sends chat messages and files in chunks, answers the
// backend's SENDs and reads its REPORTs.
//
//	go run ./examples/webchat                    # then open the URL it prints
//	go run ./examples/webchat -addr 127.0.0.1:8080
//
// The backend echoes each chat message ("echo: ...") and answers each file
// with its size and SHA-256. A real service would learn the page's a=path
// and give its own through SIP and SDP; here a small JSON endpoint, POST
// /session, stands in for that offer and answer.
//
// The demo serves plain HTTP and ws:, so it listens on loopback; RFC 7977
// §5.1 asks for wss in service, which needs only a TLS http.Server, "wss"
// in the page's URL and UseTLS in the URI that Prepare gets.
package main

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"mime"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/go-msrp/msrp"
	"github.com/go-msrp/msrp/ws"
)

//go:embed index.html webchat.js
var static embed.FS

// maxFile caps a file the page sends: the backend keeps it in memory.
const maxFile = 16 << 20

// sendTimeout bounds each message the backend sends to the page.
const sendTimeout = 30 * time.Second

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "`host:port` to serve the page on; keep it on loopback, as it is plain HTTP")
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	c := newChat(log.Printf)
	fmt.Printf("webchat: open http://%s/ in a browser (Ctrl-C stops)\n", ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		c.Close()
	}()
	if err := c.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	c.Close()
}

// chat is the backend: one HTTP server for the page, the session endpoint
// and the MSRP WebSocket handler, and the MSRPServer that binds each
// WebSocket connection to the session it names.
type chat struct {
	msrp *msrp.MSRPServer
	http *http.Server
	logf func(format string, args ...any)

	// Tests watch the sessions through these; nil in the demo. They run on
	// a session's goroutine: onSession once it is bound, onMessage for
	// each complete message before the backend answers it.
	onSession func(s *msrp.MSRPSession)
	onMessage func(m *msrp.IncomingMessage)

	ctx    context.Context // ends at Close, and the sessions with it
	cancel context.CancelFunc

	mu       sync.Mutex
	closed   bool
	sessions sync.WaitGroup // Add under mu, so that none starts after Close waits
	closing  sync.Once
}

// newChat returns a backend that logs with logf; Serve starts it.
func newChat(logf func(format string, args ...any)) *chat {
	c := &chat{msrp: &msrp.MSRPServer{}, logf: logf}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(static))
	mux.HandleFunc("POST /session", c.newSession)
	// The default Origin check passes: the page comes from this server.
	mux.Handle("GET /msrp", &ws.Handler{Server: c.msrp})
	c.http = &http.Server{
		Handler: mux,
		// It also bounds the WebSocket handshake; the MSRPServer's
		// BindTimeout bounds the wait for the first chunk after it.
		ReadHeaderTimeout: 10 * time.Second,
	}
	return c
}

// Serve serves the page, the endpoint and the WebSockets on ln until
// Close; it returns http.ErrServerClosed then.
func (c *chat) Serve(ln net.Listener) error { return c.http.Serve(ln) }

// Close stops the server, ends every session and waits for them.
func (c *chat) Close() {
	c.closing.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		c.http.Close() // WebSocket connections are hijacked: the sessions close them
		c.cancel()
		c.msrp.Close()
	})
	c.sessions.Wait()
}

// newSession is the offer and answer: the page POSTs its a=path,
// {"path": "msrp://x.invalid:2855/id;ws"}, and gets the backend's in
// return, once the backend expects the page's WebSocket.
func (c *chat) newSession(w http.ResponseWriter, r *http.Request) {
	// A form on another site could post text/plain without asking; JSON
	// from elsewhere needs a CORS preflight, which this server never grants.
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		http.Error(w, "JSON only", http.StatusUnsupportedMediaType)
		return
	}
	var req struct {
		Path string `json:"path"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil {
		http.Error(w, "bad JSON: "+err.Error(), http.StatusBadRequest)
		return
	}
	page, err := msrp.ParsePath(req.Path)
	if err != nil || len(page) != 1 || !page[0].IsWebSocket() {
		http.Error(w, "path must be one msrp URI with transport ws", http.StatusBadRequest)
		return
	}
	// The session's URI names this HTTP server, where the page connects.
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		http.Error(w, "no local address", http.StatusInternalServerError)
		return
	}
	host, portText, err := net.SplitHostPort(local.String())
	port, _ := strconv.Atoi(portText)
	if err != nil || port == 0 {
		http.Error(w, "no local port", http.StatusInternalServerError)
		return
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	a := c.msrp.Acceptor(msrp.ServerAcceptorConfig{})
	path, err := a.Prepare(r.Context(), msrp.URI{Host: host, Port: port, Transport: "ws"})
	if err != nil {
		a.Cleanup()
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	c.sessions.Add(1)
	go func() {
		defer c.sessions.Done()
		c.serveSession(a, page)
	}()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"path": msrp.FormatPath(path)})
}

// serveSession waits for the page to bind, then answers its messages until
// the session ends.
func (c *chat) serveSession(a *msrp.ServerAcceptor, page []msrp.URI) {
	who := page[0].String()
	// The server's BindTimeout bounds the wait for the page's WebSocket.
	s, err := msrp.StartSession(c.ctx, a, page, msrp.SessionConfig{
		AcceptTypes:   []string{"text/plain", "application/octet-stream"},
		MessageConfig: msrp.MessageConfig{MaxMessageSize: maxFile},
	})
	if err != nil {
		c.logf("%s did not connect: %v", who, err)
		return
	}
	defer func() {
		s.Close()
		<-s.Done()
		c.logf("%s left: %v", who, s.Err())
	}()
	c.logf("%s connected", who)
	if c.onSession != nil {
		c.onSession(s)
	}
	c.say(s, "Welcome! I echo what you write, and check the files you send.")
	for {
		m, err := s.Receive(c.ctx)
		if err != nil {
			return
		}
		if m.Err != nil {
			c.logf("%s: message %s not received: %v", who, m.MessageID, m.Err)
			continue
		}
		if c.onMessage != nil {
			c.onMessage(m)
		}
		c.say(s, reply(m))
	}
}

// reply is the backend's answer to a message.
func reply(m *msrp.IncomingMessage) string {
	if mt, _, _ := mime.ParseMediaType(m.ContentType); mt == "text/plain" {
		return "echo: " + string(m.Data)
	}
	name := "a file"
	if _, params, err := mime.ParseMediaType(m.Headers.Get("Content-Disposition")); err == nil && params["filename"] != "" {
		name = params["filename"]
	}
	sum := sha256.Sum256(m.Data)
	return fmt.Sprintf("got %s: %d bytes, sha256 %s", name, len(m.Data), hex.EncodeToString(sum[:]))
}

// say sends text to the page and waits for its 200.
func (c *chat) say(s *msrp.MSRPSession, text string) {
	ctx, cancel := context.WithTimeout(c.ctx, sendTimeout)
	defer cancel()
	if err := s.Send(ctx, "text/plain", []byte(text), msrp.MessageOptions{}); err != nil {
		c.logf("sending %q: %v", text, err)
	}
}
