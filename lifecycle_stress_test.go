package msrp

// Randomized pressure on the interleavings of DeliverChunk's ctx, responses
// and Close.

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-msrp/msrp/internal/leakcheck"
	"github.com/stretchr/testify/assert"
)

// DeliverChunk whose ctx ends about when the response arrives (forget
// against handleResponseLocked), with Close thrown in: every call returns
// once, and nothing is left behind.
func TestSessionLifecycleStressForgetAgainstResponses(t *testing.T) {
	leakcheck.Check(t)
	for round := range 20 {
		a, b := sessionPair(t, SessionConfig{KeepaliveInterval: -1, ResponseTimeout: 50 * time.Millisecond}, SessionConfig{KeepaliveInterval: -1})
		var wg sync.WaitGroup
		var returned atomic.Int32
		const n = 200
		for i := range n {
			wg.Go(func() {
				d := time.Duration(rand.IntN(400)) * time.Microsecond
				ctx, cancel := context.WithTimeout(context.Background(), d)
				defer cancel()
				a.DeliverChunk(ctx, textSend(a.Transport(), "x"))
				returned.Add(1)
			})
			if round%4 == 0 && i == n/2 {
				go a.Close()
			}
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: %d of %d DeliverChunk calls returned", round, returned.Load(), n)
		}
		a.Close()
		b.Close()
		<-a.Done()
		<-b.Done()
		a.mu.Lock()
		assert.Zero(t, a.outstanding, "round %d: outstanding after the end", round)
		assert.Empty(t, a.byTID)
		a.mu.Unlock()
	}
}
