package webrtc_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/go-msrp/msrp"
	"github.com/go-msrp/msrp/internal/loadtest"
	msrpwebrtc "github.com/go-msrp/msrp/webrtc"
)

// tcpSessions is a session pair over loopback TCP, the baseline.
func tcpSessions(b *testing.B, cfgB msrp.SessionConfig) (sa, sb *msrp.MSRPSession) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	acc := msrp.GetAcceptor(nil, msrp.ConnectConfig{})
	accPath, err := acc.Prepare(ctx, msrp.URI{Host: "127.0.0.1"})
	require.NoError(b, err)
	conn := msrp.GetConnector(nil, msrp.ConnectConfig{})
	connPath, err := conn.Prepare(ctx, msrp.URI{Host: "127.0.0.1"})
	require.NoError(b, err)
	done := make(chan error, 1)
	go func() {
		var err error
		sb, err = msrp.StartSession(ctx, acc, connPath, cfgB)
		done <- err
	}()
	sa, err = msrp.StartSession(ctx, conn, accPath, msrp.SessionConfig{})
	require.NoError(b, err)
	require.NoError(b, <-done)
	return sa, sb
}

// dcSessions is a session pair over a data channel between two pion peers.
func dcSessions(b *testing.B, cfgB msrp.SessionConfig) (sa, sb *msrp.MSRPSession) {
	a, err := newPeer(b, "msrp", msrpwebrtc.Config{})
	require.NoError(b, err)
	p, err := newPeer(b, "msrp", msrpwebrtc.Config{})
	require.NoError(b, err)
	aURI, bURI, aSeesB, bSeesA := connect(b, a, p)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		var err error
		sb, err = msrpwebrtc.StartSession(ctx, p.conn, bURI, bSeesA.MSRP.Path, false, cfgB)
		done <- err
	}()
	sa, err = msrpwebrtc.StartSession(ctx, a.conn, aURI, aSeesB.MSRP.Path, true, msrp.SessionConfig{})
	require.NoError(b, err)
	require.NoError(b, <-done)
	return sa, sb
}

// BenchmarkDataChannel runs the same exchanges over a data channel between
// two pion peers and over loopback TCP, in the same run, and reports the
// data channel's rate as a ratio of TCP's: one 16 MiB message into an
// io.Writer, and 100-byte messages with 64 in flight.
func BenchmarkDataChannel(b *testing.B) {
	const size = 16 << 20
	b.Run("bulk", func(b *testing.B) {
		b.SetBytes(size)
		var dc, tcp, raw time.Duration
		for b.Loop() {
			dc += bulk(b, dcSessions, loadtest.Discard, size)
			tcp += bulk(b, tcpSessions, loadtest.Discard, size)
			raw += rawBulk(b, size)
		}
		b.ReportMetric(float64(b.N)*size/dc.Seconds()/1e6, "dc-MB/s")
		b.ReportMetric(float64(b.N)*size/tcp.Seconds()/1e6, "tcp-MB/s")
		b.ReportMetric(float64(b.N)*size/raw.Seconds()/1e6, "raw-dc-MB/s")
		b.ReportMetric(tcp.Seconds()/dc.Seconds(), "dc/tcp")
		b.ReportMetric(raw.Seconds()/dc.Seconds(), "dc/raw-dc")
	})
	b.Run("small-64-in-flight", func(b *testing.B) {
		const n = 5000
		var dc, tcp time.Duration
		for b.Loop() {
			dc += small(b, dcSessions, n)
			tcp += small(b, tcpSessions, n)
		}
		b.ReportMetric(float64(b.N*n)/dc.Seconds(), "dc-msgs/s")
		b.ReportMetric(float64(b.N*n)/tcp.Seconds(), "tcp-msgs/s")
		b.ReportMetric(tcp.Seconds()/dc.Seconds(), "dc/tcp")
	})
}

// rawBulk streams the same bytes over a bare data channel, in messages of
// the size MSRP's chunks take, one way: the channel's own rate.
func rawBulk(b *testing.B, size int64) time.Duration {
	a, err := newPeer(b, "msrp", msrpwebrtc.Config{})
	require.NoError(b, err)
	p, err := newPeer(b, "msrp", msrpwebrtc.Config{})
	require.NoError(b, err)
	connect(b, a, p)
	ctx := context.Background()
	msg := make([]byte, msrpwebrtc.ChunkSize(0))
	n := int(size) / len(msg)
	done := make(chan error, 1)
	go func() {
		for range n {
			if _, err := p.conn.ReadMessage(ctx); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	start := time.Now()
	for range n {
		require.NoError(b, a.conn.WriteMessage(ctx, msg))
	}
	require.NoError(b, <-done)
	return time.Since(start)
}

type pairFunc func(*testing.B, msrp.SessionConfig) (*msrp.MSRPSession, *msrp.MSRPSession)

func bulk(b *testing.B, pair pairFunc, cfgB msrp.SessionConfig, size int64) time.Duration {
	sa, sb := pair(b, cfgB)
	defer sa.Close()
	defer sb.Close()
	d, err := loadtest.Bulk(sa, sb, size)
	require.NoError(b, err)
	return d
}

func small(b *testing.B, pair pairFunc, n int) time.Duration {
	sa, sb := pair(b, msrp.SessionConfig{})
	defer sa.Close()
	defer sb.Close()
	d, err := loadtest.Pipelined(sa, sb, n, 64)
	require.NoError(b, err)
	return d
}
