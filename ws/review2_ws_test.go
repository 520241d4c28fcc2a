package ws_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-msrp/msrp"
	"github.com/go-msrp/msrp/internal/leakcheck"
	"github.com/go-msrp/msrp/ws"
)

// countStacks counts goroutines whose stack mentions fn.
func countStacks(fn string) int {
	buf := make([]byte, 4<<20)
	n := 0
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, fn) {
			n++
		}
	}
	return n
}

// A dial that the server turns away (503 from a busy or closed
// ws.Handler, a 404, a 403...) leaves the Dialer's per-dial clone of the
// http.Transport holding a keep-alive connection (and its readLoop and
// writeLoop goroutines) that nobody can reuse or close: until
// IdleConnTimeout (90 s for http.DefaultTransport; never for a Transport
// that does not set it, as httptest's client).
func TestReview2DialerRefusedDialLeaksIdleConn(t *testing.T) {
	for _, name := range []string{"httptest client", "default client"} {
		t.Run(name, func(t *testing.T) {
			b := newBackend(t, msrp.ConnectConfig{}, false)
			require.NoError(t, b.srv.Close()) // the Handler answers 503 from now on
			d := b.dialer()
			if name == "default client" {
				d.HTTPClient = nil
			}
			// Let the last subtest's connections go (its server closed them).
			for end := time.Now().Add(3 * time.Second); countStacks("persistConn).readLoop") > 0 && time.Now().Before(end); {
				time.Sleep(20 * time.Millisecond)
			}
			before := countStacks("persistConn).readLoop")
			for i := 0; i < 5; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := d.DialMessage(ctx, msrp.URI{Host: b.host, Port: b.port, Transport: "ws"})
				cancel()
				require.Error(t, err)
				require.Contains(t, err.Error(), "503")
			}
			time.Sleep(300 * time.Millisecond)
			after := countStacks("persistConn).readLoop")
			assert.LessOrEqual(t, after, before, "%d idle HTTP connections left behind by 5 refused dials", after-before)
		})
	}
}

// The Handler's 503: with MaxPendingConnections 1, a second WebSocket
// while the first binds is turned away before the upgrade, with
// Retry-After; once the first is gone, the slot is free again.
func TestReview2Handler503AndSlotBack(t *testing.T) {
	leakcheck.Check(t)
	b := newBackend(t, msrp.ConnectConfig{BindTimeout: 400 * time.Millisecond}, false)
	b.srv.MaxPendingConnections = 1
	first := dialRaw(t, b, nil) // says nothing: holds the slot until BindTimeout
	_ = first
	time.Sleep(50 * time.Millisecond)
	resp, err := http.Get(b.http.URL + "/msrp") // no upgrade headers, but offers nothing: 400
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	req, _ := http.NewRequest("GET", b.http.URL+"/msrp", nil)
	req.Header.Set("Sec-WebSocket-Protocol", "msrp")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))

	// After the first's BindTimeout the slot is back.
	deadline := time.Now().Add(3 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, _, err := websocket.Dial(ctx, "ws://"+b.http.Listener.Addr().String()+"/msrp", &websocket.DialOptions{Subprotocols: []string{ws.Subprotocol}})
		cancel()
		if err == nil {
			c.CloseNow()
			break
		}
		require.True(t, time.Now().Before(deadline), "the slot never came back: %v", err)
		time.Sleep(50 * time.Millisecond)
	}
	http.DefaultClient.CloseIdleConnections()
}

// silentServer accepts WebSockets with the msrp subprotocol and then
// neither reads nor writes: it never answers a close frame.
func silentServer(t *testing.T, useTLS bool) *httptest.Server {
	var mu sync.Mutex
	var held []*websocket.Conn
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{ws.Subprotocol}})
		if err != nil {
			return
		}
		mu.Lock()
		held = append(held, c)
		mu.Unlock()
	}))
	if useTLS {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(func() {
		mu.Lock()
		for _, c := range held {
			c.CloseNow()
		}
		mu.Unlock()
		s.Close()
	})
	return s
}

// Close, CloseNow and ReadMessage at once, against a peer that never
// answers: everything ends within Close's 1 s bound (plus slack), for
// plain and TLS dials, with DialTLSContext set or not, and nothing races.
func TestReview2ConnCloseRaces(t *testing.T) {
	leakcheck.Check(t)
	for _, tc := range []struct {
		name    string
		useTLS  bool
		dialTLS bool
		now     bool // CloseNow races Close
	}{
		{"ws", false, false, false},
		{"ws close+closenow", false, false, true},
		{"wss", true, false, false},
		{"wss DialTLSContext", true, true, false},
		{"wss DialTLSContext close+closenow", true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := silentServer(t, tc.useTLS)
			client := s.Client()
			if tc.dialTLS {
				tr := client.Transport.(*http.Transport).Clone()
				cfg := tr.TLSClientConfig.Clone()
				tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
					d := &tls.Dialer{Config: cfg}
					return d.DialContext(ctx, network, addr)
				}
				client = &http.Client{Transport: tr}
			}
			d := &ws.Dialer{URL: strings.Replace(s.URL, "http", "ws", 1) + "/", HTTPClient: client}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			mc, err := d.DialMessage(ctx, msrp.URI{})
			require.NoError(t, err)
			assert.NotEqual(t, "", mc.LocalAddr().String(), "the raw connection was recorded")
			conn := mc.(*ws.Conn)
			var wg sync.WaitGroup
			readDone := make(chan error, 1)
			go func() { _, err := conn.ReadMessage(context.Background()); readDone <- err }()
			start := time.Now()
			var closeDur atomic.Int64
			wg.Go(func() {
				conn.Close()
				closeDur.Store(int64(time.Since(start)))
			})
			if tc.now {
				wg.Go(func() {
					time.Sleep(200 * time.Millisecond)
					conn.CloseNow()
				})
			}
			wg.Wait()
			assert.Less(t, time.Duration(closeDur.Load()), 2500*time.Millisecond, "Close waited past its 1 s bound")
			select {
			case err := <-readDone:
				assert.Error(t, err)
			case <-time.After(3 * time.Second):
				t.Fatal("ReadMessage did not end after Close")
			}
			assert.NoError(t, conn.CloseNow())
			assert.NoError(t, conn.Close())
			s.CloseClientConnections()
		})
	}
}

// A custom HTTPClient whose Transport is not an *http.Transport still
// dials; Close then falls back to coder/websocket's own bound.
type countingRT struct {
	rt http.RoundTripper
	n  atomic.Int64
}

func (c *countingRT) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}

func TestReview2CustomRoundTripper(t *testing.T) {
	s := silentServer(t, false)
	base := s.Client().Transport.(*http.Transport)
	rt := &countingRT{rt: base}
	d := &ws.Dialer{URL: strings.Replace(s.URL, "http", "ws", 1) + "/", HTTPClient: &http.Client{Transport: rt}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	mc, err := d.DialMessage(ctx, msrp.URI{})
	require.NoError(t, err)
	assert.EqualValues(t, 1, rt.n.Load(), "the caller's RoundTripper was used")
	start := time.Now()
	mc.Close()
	t.Logf("Close against a silent peer through a custom RoundTripper took %v", time.Since(start))
	assert.Less(t, time.Since(start), 7*time.Second)
	s.CloseClientConnections()
}

// Many dials and closes: no goroutine survives per dial (the cloned
// transport holds nothing once a WebSocket is up and closed).
func TestReview2DialerNoLeakPerDial(t *testing.T) {
	leakcheck.Check(t)
	b := newBackend(t, msrp.ConnectConfig{BindTimeout: 2 * time.Second}, false)
	d := b.dialer()
	for i := 0; i < 10; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		mc, err := d.DialMessage(ctx, msrp.URI{Host: b.host, Port: b.port, Transport: "ws"})
		cancel()
		require.NoError(t, err, "dial %d", i)
		require.NoError(t, mc.(*ws.Conn).CloseNow())
	}
	time.Sleep(200 * time.Millisecond)
	assert.Zero(t, countStacks("persistConn).readLoop"), "idle HTTP connections after successful dials")
}

// ServeMessageConn through the Handler under load: MaxPendingConnections
// 2, 16 clients that each bind or say nothing; every client gets either
// a WebSocket or a 503, and no slot leaks.
func TestReview2HandlerUnderLoad(t *testing.T) {
	leakcheck.Check(t)
	b := newBackend(t, msrp.ConnectConfig{BindTimeout: 300 * time.Millisecond}, false)
	b.srv.MaxPendingConnections = 2
	var wg sync.WaitGroup
	var ok, busy, other atomic.Int64
	for i := 0; i < 16; i++ {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, resp, err := websocket.Dial(ctx, "ws://"+b.http.Listener.Addr().String()+"/msrp", &websocket.DialOptions{Subprotocols: []string{ws.Subprotocol}})
			switch {
			case err == nil:
				ok.Add(1)
				// Says nothing: the server drops it at BindTimeout.
				_, _, rerr := c.Read(ctx)
				if rerr == nil {
					other.Add(1)
				}
				c.CloseNow()
			case resp != nil && resp.StatusCode == http.StatusServiceUnavailable:
				busy.Add(1)
			default:
				other.Add(1)
				t.Logf("dial: %v", err)
			}
		})
	}
	wg.Wait()
	t.Logf("ok %d busy %d other %d", ok.Load(), busy.Load(), other.Load())
	assert.Zero(t, other.Load())
	assert.GreaterOrEqual(t, ok.Load(), int64(2))
	// Every slot is free: two more silent clients are upgraded at once.
	time.Sleep(100 * time.Millisecond) // the last refusals release their slots
	for i := 0; i < 2; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, _, err := websocket.Dial(ctx, "ws://"+b.http.Listener.Addr().String()+"/msrp", &websocket.DialOptions{Subprotocols: []string{ws.Subprotocol}})
		cancel()
		require.NoError(t, err, fmt.Sprintf("slot %d", i))
		defer c.CloseNow()
	}
	_ = errors.New
}
