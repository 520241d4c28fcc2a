package ws_test

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/go-msrp/msrp"
)

// tcpPair is pair over TCP, on the same kind of server, for baselines.
func tcpPair(t testing.TB, b *backend, serverCfg msrp.SessionConfig) (client, server *msrp.MSRPSession) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := b.srv.Acceptor(msrp.ServerAcceptorConfig{})
	t.Cleanup(func() { a.Cleanup() })
	serverPath, err := a.Prepare(ctx, msrp.URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	c := msrp.GetConnector(nil, msrp.ConnectConfig{})
	clientPath, err := c.Prepare(ctx, msrp.URI{Host: "127.0.0.1"})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		var err error
		server, err = msrp.StartSession(ctx, a, clientPath, serverCfg)
		done <- err
	}()
	client, err = msrp.StartSession(ctx, c, serverPath, msrp.SessionConfig{})
	require.NoError(t, err)
	require.NoError(t, <-done)
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// BenchmarkWebSocket runs the same exchange over a WebSocket session and a
// TCP session between two MSRPServer-backed ends in this process, and
// reports the WebSocket rate as a ratio of TCP's from the same run: one
// 64 MiB message (default chunks, streamed into io.Discard), and 100-byte
// messages with 64 in flight.
func BenchmarkWebSocket(b *testing.B) {
	const bulk = 64 << 20
	b.Run("bulk", func(b *testing.B) {
		be := newBackend(b, msrp.ConnectConfig{}, false)
		var wsTime, tcpTime time.Duration
		b.SetBytes(bulk)
		for b.Loop() {
			wsTime += oneBulk(b, be, true, bulk)
			tcpTime += oneBulk(b, be, false, bulk)
		}
		b.ReportMetric(float64(b.N)*bulk/wsTime.Seconds()/1e6, "ws-MB/s")
		b.ReportMetric(float64(b.N)*bulk/tcpTime.Seconds()/1e6, "tcp-MB/s")
		b.ReportMetric(tcpTime.Seconds()/wsTime.Seconds(), "ws/tcp")
	})
	b.Run("small-64-in-flight", func(b *testing.B) {
		be := newBackend(b, msrp.ConnectConfig{}, false)
		const n = 20000
		var wsTime, tcpTime time.Duration
		for b.Loop() {
			wsTime += manySmall(b, be, true, n)
			tcpTime += manySmall(b, be, false, n)
		}
		b.ReportMetric(float64(b.N*n)/wsTime.Seconds(), "ws-msgs/s")
		b.ReportMetric(float64(b.N*n)/tcpTime.Seconds(), "tcp-msgs/s")
		b.ReportMetric(tcpTime.Seconds()/wsTime.Seconds(), "ws/tcp")
	})
}

func sessions(b *testing.B, be *backend, overWS bool, serverCfg msrp.SessionConfig) (client, server *msrp.MSRPSession) {
	if overWS {
		return pairWith(b, be, false, serverCfg)
	}
	return tcpPair(b, be, serverCfg)
}

func oneBulk(b *testing.B, be *backend, overWS bool, size int64) time.Duration {
	client, server := sessions(b, be, overWS, msrp.SessionConfig{MessageConfig: msrp.MessageConfig{
		MessageWriter: func(*msrp.MSRPSession, *msrp.IncomingMessage) io.Writer { return io.Discard },
	}})
	defer client.Close()
	defer server.Close()
	ctx := context.Background()
	start := time.Now()
	m, err := client.SendMessage(io.LimitReader(zeros{}, size), size, "application/octet-stream", msrp.MessageOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Wait(ctx); err != nil {
		b.Fatal(err)
	}
	got, err := server.Receive(ctx)
	if err != nil || got.Received != size {
		b.Fatalf("received %v, %v", got, err)
	}
	return time.Since(start)
}

func manySmall(b *testing.B, be *backend, overWS bool, n int) time.Duration {
	client, server := sessions(b, be, overWS, msrp.SessionConfig{})
	defer client.Close()
	defer server.Close()
	ctx := context.Background()
	t := client.Transport()
	body := make([]byte, 100)
	go func() { // the peer takes each message
		for {
			if _, err := server.Receive(ctx); err != nil {
				return
			}
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range 64 {
		wg.Go(func() {
			for i := w; i < n; i += 64 {
				c := t.MakeSendRequest("", body, 1, 0)
				c.Headers.Set(msrp.HeaderContentType, "text/plain")
				if _, err := client.DeliverChunk(ctx, c); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }
