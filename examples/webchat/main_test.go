package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-msrp/msrp"
	"github.com/go-msrp/msrp/internal/interop"
	"github.com/go-msrp/msrp/ws"
)

// TestMain says which interop tests were skipped.
func TestMain(m *testing.M) { os.Exit(interop.Main(m, "webchat")) }

// startChat serves a backend on loopback, with the test's hooks set by
// setup, and returns its base URL.
func startChat(t *testing.T, setup func(c *chat)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c := newChat(t.Logf)
	if setup != nil {
		setup(c)
	}
	served := make(chan error, 1)
	go func() { served <- c.Serve(ln) }()
	t.Cleanup(func() {
		c.Close() // waits for the sessions, which log with t.Logf
		assert.ErrorIs(t, <-served, http.ErrServerClosed)
	})
	return "http://" + ln.Addr().String() + "/"
}

// postSession is the page's offer and answer, done from Go.
func postSession(t *testing.T, base, contentType, body string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Post(base+"session", contentType, strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func TestPageServed(t *testing.T) {
	base := startChat(t, nil)
	for path, want := range map[string]string{
		"":           `<script src="webchat.js">`,
		"webchat.js": `new WebSocket(`,
	} {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
		assert.Contains(t, string(b), want, path)
	}
}

func TestSessionEndpointRefusals(t *testing.T) {
	base := startChat(t, nil)
	good := msrp.WebSocketClientURI(false).String()
	for name, tc := range map[string]struct {
		contentType, body string
		want              int
	}{
		"form":          {"text/plain", `{"path":"` + good + `"}`, http.StatusUnsupportedMediaType},
		"bad JSON":      {"application/json", `{"path":`, http.StatusBadRequest},
		"not a path":    {"application/json", `{"path":"http://example.com/"}`, http.StatusBadRequest},
		"tcp":           {"application/json", `{"path":"msrp://127.0.0.1:2855/abcd;tcp"}`, http.StatusBadRequest},
		"two URIs":      {"application/json", `{"path":"` + good + " " + good + `"}`, http.StatusBadRequest},
		"too large":     {"application/json", `{"path":"` + strings.Repeat("x", 5000) + `"}`, http.StatusBadRequest},
		"the good path": {"application/json; charset=utf-8", `{"path":"` + good + `"}`, http.StatusOK},
	} {
		resp, body := postSession(t, base, tc.contentType, tc.body)
		assert.Equal(t, tc.want, resp.StatusCode, "%s: %s", name, body)
	}
}

// A Go client does what the page does, through the endpoint and a
// WebSocket, so that the backend is tested where no browser is installed.
func TestGoClient(t *testing.T) {
	received := make(chan *msrp.IncomingMessage, 4)
	base := startChat(t, func(c *chat) { c.onMessage = func(m *msrp.IncomingMessage) { received <- m } })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	conn := &msrp.ConnectorDirect{ConnectConfig: msrp.ConnectConfig{DialMessage: (&ws.Dialer{Path: "/msrp"}).DialMessage}}
	mine, err := conn.Prepare(ctx, msrp.WebSocketClientURI(false))
	require.NoError(t, err)
	req, err := json.Marshal(map[string]string{"path": msrp.FormatPath(mine)})
	require.NoError(t, err)
	resp, body := postSession(t, base, "application/json", string(req))
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	var answer struct{ Path string }
	require.NoError(t, json.Unmarshal([]byte(body), &answer))
	theirs, err := msrp.ParsePath(answer.Path)
	require.NoError(t, err)
	s, err := msrp.StartSession(ctx, conn, theirs, msrp.SessionConfig{})
	require.NoError(t, err)
	defer s.Close()
	next := func() string {
		m, err := s.Receive(ctx)
		require.NoError(t, err)
		return string(m.Data)
	}
	assert.Contains(t, next(), "Welcome")

	require.NoError(t, s.Send(ctx, "text/plain", []byte("hello from Go"), msrp.MessageOptions{}))
	assert.Equal(t, "hello from Go", string((<-received).Data))
	assert.Equal(t, "echo: hello from Go", next())

	file := make([]byte, 300000)
	rand.Read(file)
	sum := sha256.Sum256(file)
	require.NoError(t, s.Send(ctx, "application/octet-stream", file, msrp.MessageOptions{
		Headers: msrp.Header{{Name: "Content-Disposition", Value: `attachment; filename="r.bin"`}},
	}))
	assert.Equal(t, sum, sha256.Sum256((<-received).Data))
	assert.Equal(t, "got r.bin: 300000 bytes, sha256 "+hex.EncodeToString(sum[:]), next())
	assert.NoError(t, s.Shutdown(ctx))
}

// chromium finds the browser as chromedp does. Without one the test
// skips, but not in CI, which must run it.
func chromium(t *testing.T) string {
	return interop.Tool(t, "the browser test", "apt-get install chromium", "headless_shell", "headless-shell", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
}

// evalJS runs expr in the page and awaits the promise it may return.
func evalJS[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	require.NoError(t, err, "evaluating %s", expr)
	return v
}

// waitJS waits until cond, a JavaScript expression, is true in the page.
func waitJS(t *testing.T, ctx context.Context, cond string) {
	t.Helper()
	evalJS[bool](t, ctx, `new Promise((resolve, reject) => {
		const deadline = Date.now() + 20000;
		const poll = () => {
			if (`+cond+`) resolve(true);
			else if (Date.now() > deadline) reject(new Error("timed out waiting for: "+`+jsString(cond)+`));
			else setTimeout(poll, 50);
		};
		poll();
	})`)
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestBrowser has headless Chromium run the page's own JavaScript against
// the backend: bind, a chat message each way, a binary message from the
// backend, a 256 KiB file in 16 KiB chunks, each in a WebSocket message of
// its own, then a message typed and a file picked as a user does.
func TestBrowser(t *testing.T) {
	browser := chromium(t)
	received := make(chan *msrp.IncomingMessage, 4)
	sessions := make(chan *msrp.MSRPSession, 1)
	base := startChat(t, func(c *chat) {
		c.onMessage = func(m *msrp.IncomingMessage) { received <- m }
		c.onSession = func(s *msrp.MSRPSession) { sessions <- s }
	})
	goWait := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		t.Cleanup(cancel)
		return ctx
	}

	alloc, cancel := chromedp.NewExecAllocator(context.Background(),
		append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.WindowSize(800, 700))...)
	defer cancel()
	// The first Run starts the browser, which lives as long as this
	// context: no timeout on it; evalJS bounds each step.
	ctx, cancel := chromedp.NewContext(alloc)
	consoleDone := make(chan struct{})
	defer func() {
		cancel()
		<-consoleDone // t.Logf must not run after the test
	}()
	console := chromedp.Console(ctx)
	go func() {
		defer close(consoleDone)
		for m, err := range console {
			if err != nil {
				return
			}
			t.Logf("page console: %s", m)
		}
	}()
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base)))
	evalJS[bool](t, ctx, `webchat.ready.then(() => true)`)
	var s *msrp.MSRPSession
	select {
	case s = <-sessions:
	case <-goWait().Done():
		t.Fatal("the page bound, but the backend has no session")
	}

	// Every WebSocket message the page sends from now on: text or binary,
	// and its size.
	evalJS[bool](t, ctx, `(() => {
		window.wsSent = [];
		const send = WebSocket.prototype.send;
		WebSocket.prototype.send = function (d) {
			wsSent.push({binary: typeof d !== "string", size: typeof d === "string" ? d.length : d.byteLength});
			return send.call(this, d);
		};
		return true;
	})()`)

	// A chat message from the page, and the backend's echo.
	evalJS[string](t, ctx, `webchat.send("héllo from Chromium 👋")`)
	select {
	case m := <-received:
		assert.Equal(t, "text/plain", m.ContentType)
		assert.Equal(t, "héllo from Chromium 👋", string(m.Data))
	case <-goWait().Done():
		t.Fatal("the backend received no message")
	}
	waitJS(t, ctx, `document.querySelector("#log").innerText.includes("echo: héllo from Chromium 👋")`)
	waitJS(t, ctx, `document.querySelector("#log li.me.delivered") !== null`) // the success REPORT

	// A binary message from Go: a binary WebSocket message the page must read.
	blob := []byte{0xff, 0x00, 0x80, 'b', 'i', 'n', 0xfe, '\r', '\n', 0xc3}
	require.NoError(t, s.Send(goWait(), "application/octet-stream", blob, msrp.MessageOptions{}))
	got := evalJS[[]int](t, ctx, `fetch(document.querySelector("#log li.them a").href)
		.then((r) => r.arrayBuffer()).then((b) => Array.from(new Uint8Array(b)))`)
	want := make([]int, len(blob))
	for i, b := range blob {
		want[i] = int(b)
	}
	assert.Equal(t, want, got)

	// A 256 KiB file in chunks; the backend checks its SHA-256.
	file := make([]byte, 256<<10)
	rand.Read(file)
	sum := sha256.Sum256(file)
	evalJS[string](t, ctx, `webchat.sendFile("random.bin",
		Uint8Array.from(atob("`+base64.StdEncoding.EncodeToString(file)+`"), (c) => c.charCodeAt(0)))`)
	select {
	case m := <-received:
		assert.Equal(t, "application/octet-stream", m.ContentType)
		assert.Equal(t, sum, sha256.Sum256(m.Data), "the file the backend received")
	case <-goWait().Done():
		t.Fatal("the backend received no file")
	}
	gotLine := "got random.bin: 262144 bytes, sha256 " + hex.EncodeToString(sum[:])
	waitJS(t, ctx, `document.querySelector("#log").innerText.includes(`+jsString(gotLine)+`)`)
	waitJS(t, ctx, `document.querySelectorAll("#log li.me.delivered").length === 2`)
	assert.Equal(t, float64(len(file)), evalJS[float64](t, ctx, `document.querySelector("#log progress").value`))

	type frame struct {
		Binary bool
		Size   int
	}
	frames := evalJS[[]frame](t, ctx, `wsSent`)
	var chunks []frame
	for _, f := range frames {
		if f.Binary {
			chunks = append(chunks, f)
		}
	}
	require.Len(t, chunks, 16, "the file's chunks, each in a binary message: %v", frames)
	for _, f := range chunks {
		assert.Greater(t, f.Size, 16<<10)
		assert.Less(t, f.Size, 16<<10+512, "one chunk per message")
	}
	assert.Less(t, len(chunks), len(frames), "chat messages and responses go as text: %v", frames)

	// What a user does: type a message, and pick a file of 40000 bytes, in
	// three chunks the last of which is short.
	upload := filepath.Join(t.TempDir(), "picked.bin")
	picked := make([]byte, 40000)
	rand.Read(picked)
	require.NoError(t, os.WriteFile(upload, picked, 0o644))
	uiCtx, cancelUI := context.WithTimeout(ctx, 20*time.Second)
	defer cancelUI()
	require.NoError(t, chromedp.Do(uiCtx,
		chromedp.SendKeys(chromedp.CSS("#text"), "typed by hand"),
		chromedp.Click(chromedp.CSS("#chat button")),
		chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{upload}),
	))
	for _, want := range [][]byte{[]byte("typed by hand"), picked} {
		select {
		case m := <-received:
			assert.Equal(t, sha256.Sum256(want), sha256.Sum256(m.Data))
		case <-goWait().Done():
			t.Fatal("the backend did not receive what the user sent")
		}
	}
	pickedSum := sha256.Sum256(picked)
	pickedLine := "got picked.bin: 40000 bytes, sha256 " + hex.EncodeToString(pickedSum[:])
	waitJS(t, ctx, `document.querySelector("#log").innerText.includes(`+jsString(pickedLine)+`)`)
	waitJS(t, ctx, `document.querySelectorAll("#log li.me.delivered").length === 4`)

	shotCtx, cancelShot := context.WithTimeout(ctx, 20*time.Second)
	defer cancelShot()
	shot, err := chromedp.Run(shotCtx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(shot, []byte("\x89PNG")), "a PNG")
	if dir := os.Getenv("MSRP_SCREENSHOT_DIR"); dir != "" {
		require.NoError(t, os.MkdirAll(dir, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "webchat.png"), shot, 0o644))
	}
	text := evalJS[string](t, ctx, `document.querySelector("#log").innerText`)
	for _, want := range []string{"Welcome!", "héllo from Chromium 👋", "echo: héllo from Chromium 👋", "application/octet-stream, 10 bytes", "random.bin (262144 bytes)", gotLine,
		"echo: typed by hand", "picked.bin (40000 bytes)", pickedLine} {
		assert.Contains(t, text, want)
	}
	assert.Contains(t, evalJS[string](t, ctx, `document.querySelector("#status").textContent`), "connected as msrp://")
	assert.NotContains(t, text, "✗")

	// The page leaving ends its session at the backend.
	require.NoError(t, chromedp.Do(uiCtx, chromedp.Navigate("about:blank")))
	select {
	case <-s.Done():
	case <-goWait().Done():
		t.Fatal("the session outlived its page")
	}
	assert.NoError(t, s.Err(), "the page closed its WebSocket cleanly")
}
