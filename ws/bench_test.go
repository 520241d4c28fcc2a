package ws_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/go-msrp/msrp"
	"github.com/go-msrp/msrp/internal/loadtest"
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
	client, server := sessions(b, be, overWS, loadtest.Discard)
	defer client.Close()
	defer server.Close()
	d, err := loadtest.Bulk(client, server, size)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

func manySmall(b *testing.B, be *backend, overWS bool, n int) time.Duration {
	client, server := sessions(b, be, overWS, msrp.SessionConfig{})
	defer client.Close()
	defer server.Close()
	d, err := loadtest.Pipelined(client, server, n, 64)
	if err != nil {
		b.Fatal(err)
	}
	return d
}
