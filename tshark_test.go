package msrp

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-msrp/msrp/internal/interop"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTsharkDecodesWhatWeSend captures a session on loopback (chunking,
// REPORTs, an error response; TLS off) and has Wireshark's MSRP dissector,
// an implementation nobody here wrote, decode it: every MSRP message must
// decode without a malformed mark, with its end-line naming the
// transaction of its start line.
func TestTsharkDecodesWhatWeSend(t *testing.T) {
	tshark := interop.Tool(t, "the tshark decoding test", "apt-get install tshark", "tshark")
	ctx := context.Background()
	acceptor, answer := preparedAcceptor(t, ConnectConfig{}, false)
	port := answer[0].Port
	capture := filepath.Join(t.TempDir(), "msrp.pcapng")

	stopCapture := interop.Capture(t, tshark, fmt.Sprintf("tcp port %d", port), capture)

	// The exchange: bind, a message in five chunks with success REPORTs, a
	// refused content type.
	connector := &ConnectorDirect{}
	offer, err := connector.Prepare(ctx, URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	done := make(chan pairResult, 1)
	go func() {
		tr, err := acceptor.Complete(ctx, offer)
		done <- pairResult{tr, err}
	}()
	ta, err := connector.Complete(ctx, answer)
	require.NoError(t, err)
	r := <-done
	require.NoError(t, r.err)
	got := make(chan *IncomingMessage, 1)
	// One message per write: the dissector decodes only the first message of
	// a TCP segment (see DisableWriteBatching).
	a := NewMSRPSession(ta, SessionConfig{DisableWriteBatching: true, MessageConfig: MessageConfig{ChunkSize: 1000, Window: 1}})
	b := NewMSRPSession(r.t, SessionConfig{DisableWriteBatching: true, AcceptTypes: []string{"text/plain"},
		MessageConfig: MessageConfig{OnMessage: func(_ *MSRPSession, m *IncomingMessage) { got <- m }}})
	body := strings.Repeat("0123456789", 500)
	m, err := a.SendMessage(strings.NewReader(body), int64(len(body)), "text/plain", MessageOptions{SuccessReport: true})
	require.NoError(t, err)
	require.NoError(t, m.Wait(ctx))
	require.NoError(t, (<-got).Err)
	refused := textSend(ta, "%PDF")
	refused.Headers.Set(HeaderContentType, "application/pdf")
	_, err = a.DeliverChunk(ctx, refused)
	var te *TransactionError
	require.ErrorAs(t, err, &te)
	require.Equal(t, 415, te.Code)
	time.Sleep(200 * time.Millisecond) // let the REPORTs go out
	require.NoError(t, a.Shutdown(ctx))
	require.NoError(t, b.Close())
	time.Sleep(500 * time.Millisecond) // let the capture see the last packets
	stopCapture()

	decode := func(args ...string) string {
		out, err := exec.Command(tshark, append([]string{"-r", capture, "-d", fmt.Sprintf("tcp.port==%d,msrp", port)}, args...)...).Output()
		require.NoError(t, err)
		return string(out)
	}
	assert.Empty(t, strings.TrimSpace(decode("-Y", "_ws.malformed")), "malformed frames")
	fields := decode("-Y", "msrp", "-T", "fields", "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=;",
		"-e", "msrp.request.line", "-e", "msrp.response.line", "-e", "msrp.end.line")
	counts := map[string]int{}
	messages := 0
	for _, line := range strings.Split(strings.TrimSpace(fields), "\n") {
		cols := strings.Split(line, "|")
		require.Len(t, cols, 3, line)
		starts := append(splitNonEmpty(cols[0]), splitNonEmpty(cols[1])...)
		ends := splitNonEmpty(cols[2])
		require.Equal(t, len(starts), len(ends), "every start line has an end-line: %q", line)
		for _, start := range starts {
			parts := strings.Fields(start) // MSRP <tid> <method or code> ...
			require.GreaterOrEqual(t, len(parts), 3, start)
			tid, what := parts[1], parts[2]
			found := false
			for _, end := range ends {
				if strings.TrimRight(strings.TrimPrefix(end, "-------"), "$+#") == tid {
					found = true
				}
			}
			assert.True(t, found, "end-line for %s in %q", tid, line)
			counts[what]++
			messages++
		}
	}
	t.Logf("tshark decoded %d MSRP messages: %v", messages, counts)
	assert.GreaterOrEqual(t, counts["SEND"], 7, "the binding SEND, five chunks and the refused one")
	assert.GreaterOrEqual(t, counts["REPORT"], 5, "a success REPORT per chunk")
	assert.GreaterOrEqual(t, counts["200"], 6)
	assert.Equal(t, 1, counts["415"])
}

func splitNonEmpty(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ";") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
