package webrtc_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	pion "github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-msrp/msrp"
	"github.com/go-msrp/msrp/internal/interop"
	msrpwebrtc "github.com/go-msrp/msrp/webrtc"
)

// chromeFlags let headless Chromium connect on loopback with no network:
// it leaves the loopback interface out of WebRTC unless told, and names its
// host candidates with mDNS (.local), which pion, mDNS off, cannot resolve.
var chromeFlags = []chromedp.ExecAllocatorOption{
	chromedp.Flag("allow-loopback-in-peer-connection", true),
	chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
}

// chromium finds the browser as chromedp does. Without one the test
// skips, but not in CI, which must run it.
func chromium(t *testing.T) string {
	return interop.Tool(t, "the browser test", "apt-get install chromium", "headless_shell", "headless-shell", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
}

// pageOffer is the page's SDP offer, and where its answer goes.
type pageOffer struct {
	sdp    string
	answer chan<- string
}

// servePage serves testdata on loopback and hands each offer the page
// POSTs to the test, which answers it.
func servePage(t *testing.T) (base string, offers <-chan pageOffer) {
	ch := make(chan pageOffer)
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(os.DirFS("testdata")))
	mux.HandleFunc("POST /offer", func(w http.ResponseWriter, r *http.Request) {
		sdp, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		answer := make(chan string, 1)
		select {
		case ch <- pageOffer{string(sdp), answer}:
		case <-r.Context().Done():
			return
		}
		select {
		case a := <-answer:
			w.Header().Set("Content-Type", "application/sdp")
			io.WriteString(w, a)
		case <-r.Context().Done():
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/", ch
}

// answerPage answers the page's offer from pion, the MSRP channel's dcsa
// setup set to goSetup, and starts the session over it.
func answerPage(t *testing.T, o pageOffer, goSetup msrp.SDPSetup) *msrp.MSRPSession {
	d, err := msrp.ParseSDP([]byte(o.sdp))
	require.NoError(t, err)
	require.Len(t, d.Media, 1, "the page offers one section: the data channels'")
	m := d.Media[0]
	ch, err := m.MSRPChannel(0)
	require.NoError(t, err, "the page's offer:\n%s", o.sdp)
	assert.Equal(t, msrp.SetupActPass, ch.MSRP.Setup)
	assert.Equal(t, "chat", ch.Label)
	for _, line := range strings.Split(o.sdp, "\r\n") {
		if strings.HasPrefix(line, "a=candidate") || strings.HasPrefix(line, "a=max-message-size") {
			t.Logf("page offer: %s", line)
		}
	}

	pc, err := loopbackAPI().NewPeerConnection(pion.Configuration{})
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	negotiated, id, protocol := true, uint16(0), msrpwebrtc.Subprotocol
	dc, err := pc.CreateDataChannel("chat", &pion.DataChannelInit{Negotiated: &negotiated, ID: &id, Protocol: &protocol})
	require.NoError(t, err)
	// Chromium's a=max-message-size, 262144, bounds the chunks we send.
	conn, err := msrpwebrtc.NewConn(dc, msrpwebrtc.Config{MaxMessageSize: m.MaxMessageSize()})
	require.NoError(t, err)
	require.NoError(t, pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeOffer, SDP: o.sdp}))
	answer, err := pc.CreateAnswer(nil)
	require.NoError(t, err)
	gathered := pion.GatheringCompletePromise(pc)
	require.NoError(t, pc.SetLocalDescription(answer))
	<-gathered
	text, self := describe(t, pc.LocalDescription().SDP, goSetup)
	o.answer <- text

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := msrpwebrtc.StartSession(ctx, conn, self, ch.MSRP.Path, goSetup == msrp.SetupActive, msrp.SessionConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	if p, err := pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair(); err == nil && p != nil {
		t.Logf("ICE pair: %s", p)
	}
	return s
}

// evalJS runs expr in the page and awaits the promise it may return.
func evalJS[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	require.NoError(t, err, "evaluating %.200s", expr)
	return v
}

func navigate(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(url)))
}

// waitJS waits until cond, a JavaScript expression, is true in the page.
func waitJS(t *testing.T, ctx context.Context, cond string) {
	t.Helper()
	quoted, _ := json.Marshal(cond)
	evalJS[bool](t, ctx, `new Promise((resolve, reject) => {
		const deadline = Date.now() + 20000;
		const poll = () => {
			if (`+cond+`) resolve(true);
			else if (Date.now() > deadline) reject(new Error("timed out waiting for: " + `+string(quoted)+`));
			else setTimeout(poll, 50);
		};
		poll();
	})`)
}

// TestBrowser has headless Chromium run dcchat.js, MSRP in the page's own
// JavaScript, over an RTCDataChannel to pion: the page offers, pion
// answers, once passive (the page sends the first SEND) and once active.
// Then a chat message each way, a 1 MiB file from the page in 16 KiB
// chunks, each a binary message of its own, and a 600 KiB file from Go in
// chunks as large as Chromium's max-message-size allows.
func TestBrowser(t *testing.T) {
	browser := chromium(t)
	base, offers := servePage(t)
	alloc, cancel := chromedp.NewExecAllocator(context.Background(),
		append(append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.WindowSize(800, 700)), chromeFlags...)...)
	defer cancel()
	// The browser lives as long as this context: evalJS bounds each step.
	ctx, cancel := chromedp.NewContext(alloc)
	consoleDone := make(chan struct{})
	defer func() {
		cancel()
		<-consoleDone // t.Logf must not run after the test
	}()
	require.NoError(t, chromedp.Do(ctx), "starting %s", browser) // its lifetime is ctx's, so no timeout here
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

	for _, tc := range []struct {
		name     string
		goSetup  msrp.SDPSetup
		pageRole string
	}{
		{"page binds", msrp.SetupPassive, "active"},
		{"pion binds", msrp.SetupActive, "passive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			navigate(t, ctx, base+"dcchat.html")
			var o pageOffer
			select {
			case o = <-offers:
			case <-time.After(20 * time.Second):
				t.Fatal("the page made no offer")
			}
			s := answerPage(t, o, tc.goSetup)
			assert.Equal(t, tc.pageRole, evalJS[string](t, ctx, `dcchat.ready`))
			browserChat(t, ctx, s)

			// The page leaving ends the session.
			navigate(t, ctx, "about:blank")
			select {
			case <-s.Done():
				assert.NoError(t, s.Err(), "the page closed the channel cleanly")
			case <-time.After(20 * time.Second):
				t.Fatal("the session outlived its page")
			}
		})
	}
}

// browserChat is what the page and the Go side say to each other.
func browserChat(t *testing.T, ctx context.Context, s *msrp.MSRPSession) {
	goCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Every data channel message the page sends from now on.
	evalJS[bool](t, ctx, `(() => {
		window.dcSent = [];
		const send = RTCDataChannel.prototype.send;
		RTCDataChannel.prototype.send = function (d) {
			dcSent.push({binary: typeof d !== "string", size: typeof d === "string" ? d.length : d.byteLength});
			return send.call(this, d);
		};
		return true;
	})()`)

	evalJS[bool](t, ctx, `dcchat.send("héllo from Chromium 👋").then(() => true)`)
	m, err := s.Receive(goCtx)
	require.NoError(t, err)
	assert.Equal(t, "text/plain", m.ContentType)
	assert.Equal(t, "héllo from Chromium 👋", string(m.Data))

	require.NoError(t, s.Send(goCtx, "text/plain", []byte("and hello from pion"), msrp.MessageOptions{}))
	assert.Equal(t, "and hello from pion", evalJS[string](t, ctx, `new TextDecoder().decode(dcchat.messages[0].body)`))

	file := make([]byte, 1<<20)
	rand.Read(file)
	evalJS[bool](t, ctx, `dcchat.sendFile(Uint8Array.from(atob("`+base64.StdEncoding.EncodeToString(file)+`"), (c) => c.charCodeAt(0))).then(() => true)`)
	m, err = s.Receive(goCtx)
	require.NoError(t, err)
	assert.Equal(t, "application/octet-stream", m.ContentType)
	assert.Equal(t, sha256.Sum256(file), sha256.Sum256(m.Data), "the file Go received")

	type sent struct {
		Binary bool
		Size   int
	}
	var chunks int
	for _, f := range evalJS[[]sent](t, ctx, `dcSent`) {
		assert.True(t, f.Binary, "every message binary")
		assert.Less(t, f.Size, 16<<10+512, "one chunk per message")
		if f.Size > 16<<10 {
			chunks++
		}
	}
	assert.Equal(t, 64, chunks, "the file in 16 KiB chunks")

	back := make([]byte, 600<<10)
	rand.Read(back)
	require.NoError(t, s.Send(goCtx, "application/octet-stream", back, msrp.MessageOptions{}))
	sum := sha256.Sum256(back)
	assert.Equal(t, hex.EncodeToString(sum[:]), evalJS[string](t, ctx, `crypto.subtle.digest("SHA-256", dcchat.messages[1].body)
		.then((h) => Array.from(new Uint8Array(h), (b) => b.toString(16).padStart(2, "0")).join(""))`), "the file the page received")
	waitJS(t, ctx, `document.querySelectorAll("#log li").length === 4`)

	shotCtx, cancelShot := context.WithTimeout(ctx, 20*time.Second)
	defer cancelShot()
	shot, err := chromedp.Run(shotCtx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	if dir := os.Getenv("MSRP_SCREENSHOT_DIR"); dir != "" {
		name := fmt.Sprintf("dcchat-%s.png", strings.ReplaceAll(filepath.Base(t.Name()), " ", "-"))
		require.NoError(t, os.MkdirAll(dir, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), shot, 0o644))
	}
}
