package ws_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-msrp/msrp"
	"github.com/go-msrp/msrp/internal/interop"
)

// msrpOverWebSocket has tshark 4.0 hand WebSocket messages of the msrp
// subprotocol to its MSRP dissector, which it does not do by itself.
const msrpOverWebSocket = `DissectorTable.get("ws.protocol"):add("msrp", Dissector.get("msrp"))` + "\n"

// TestTsharkDecodesMSRPOverWebSocket captures a WebSocket session on
// loopback (the HTTP upgrade, text and binary chunks, success REPORTs, an
// error response) and has Wireshark's WebSocket and MSRP dissectors, which
// nobody here wrote, decode it: each WebSocket message is one MSRP message
// whose end-line names the transaction of its start line, and nothing is
// malformed.
func TestTsharkDecodesMSRPOverWebSocket(t *testing.T) {
	tshark := interop.Tool(t, "the tshark WebSocket decoding test", "apt-get install tshark", "tshark")
	b := newBackend(t, msrp.ConnectConfig{}, false)
	dir := t.TempDir()
	capture := filepath.Join(dir, "msrp-ws.pcapng")
	lua := filepath.Join(dir, "msrp-ws.lua")
	require.NoError(t, os.WriteFile(lua, []byte(msrpOverWebSocket), 0o600))

	stopCapture := interop.Capture(t, tshark, fmt.Sprintf("tcp port %d", b.port), capture)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client, server := pairWith(t, b, false, msrp.SessionConfig{AcceptTypes: []string{"text/plain", "application/octet-stream"}})
	body := strings.Repeat("0123456789", 300)
	m, err := client.SendMessage(strings.NewReader(body), int64(len(body)), "text/plain", msrp.MessageOptions{SuccessReport: true})
	require.NoError(t, err)
	require.NoError(t, m.Wait(ctx))
	got, err := server.Receive(ctx)
	require.NoError(t, err)
	require.Equal(t, body, string(got.Data))
	require.NoError(t, server.Send(ctx, "application/octet-stream", []byte{0xff, 0xfe, 0x00, 0x80}, msrp.MessageOptions{}))
	_, err = client.Receive(ctx)
	require.NoError(t, err)
	refused := client.Transport().MakeSendRequest("", []byte("%PDF"), 1, 4)
	refused.Headers.Set(msrp.HeaderContentType, "application/pdf")
	_, err = client.DeliverChunk(ctx, refused)
	var te *msrp.TransactionError
	require.ErrorAs(t, err, &te)
	require.Equal(t, 415, te.Code)
	time.Sleep(200 * time.Millisecond) // let the REPORTs go out
	require.NoError(t, client.Shutdown(ctx))
	time.Sleep(500 * time.Millisecond) // let the capture see the last packets
	stopCapture()

	decode := func(args ...string) string {
		out, err := exec.Command(tshark, append([]string{"-r", capture, "-X", "lua_script:" + lua,
			"-d", fmt.Sprintf("tcp.port==%d,http", b.port)}, args...)...).Output()
		require.NoError(t, err)
		return string(out)
	}
	assert.Empty(t, strings.TrimSpace(decode("-Y", "_ws.malformed")), "malformed frames")
	fields := decode("-Y", "msrp", "-T", "fields", "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=;",
		"-e", "websocket.opcode", "-e", "msrp.request.line", "-e", "msrp.response.line", "-e", "msrp.end.line")
	counts := map[string]int{}
	opcodes := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(fields), "\n") {
		cols := strings.Split(line, "|")
		require.Len(t, cols, 4, line)
		starts := append(split(cols[1]), split(cols[2])...)
		ends := split(cols[3])
		// A frame may carry several WebSocket messages; each is one chunk.
		require.Equal(t, len(starts), len(ends), "every start line has an end-line: %q", line)
		for _, op := range split(cols[0]) {
			opcodes[op] = true
		}
		for i, start := range starts {
			parts := strings.Fields(start)
			require.GreaterOrEqual(t, len(parts), 3, start)
			assert.Equal(t, parts[1], strings.TrimRight(strings.TrimPrefix(ends[i], "-------"), "$+#"), "end-line of %s", start)
			counts[parts[2]]++
		}
	}
	t.Logf("tshark decoded over WebSocket: %v, opcodes %v", counts, opcodes)
	assert.GreaterOrEqual(t, counts["SEND"], 4, "the binding SEND, the text, the binary one, the refused one")
	assert.GreaterOrEqual(t, counts["REPORT"], 1, "the success REPORT")
	assert.GreaterOrEqual(t, counts["200"], 3)
	assert.Equal(t, 1, counts["415"])
	assert.True(t, opcodes["1"] && opcodes["2"], "text and binary messages: %v", opcodes)
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ";") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
