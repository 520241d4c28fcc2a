package cpim

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sent is an indication as a Composer sent it, with the (bubble) time.
type sent struct {
	at time.Duration // since the start of the test
	ic IsComposing
}

// recorder collects what a Composer sends.
type recorder struct {
	start time.Time
	mu    sync.Mutex
	got   []sent
}

func newRecorder() *recorder { return &recorder{start: time.Now()} }

func (r *recorder) send(ic *IsComposing) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, sent{time.Since(r.start), *ic})
}

// take returns what was sent since the last call.
func (r *recorder) take() []sent {
	synctest.Wait() // let timer callbacks due by now finish
	r.mu.Lock()
	defer r.mu.Unlock()
	got := r.got
	r.got = nil
	return got
}

// states summarises indications as "state@seconds".
func states(s []sent) []string {
	var out []string
	for _, x := range s {
		out = append(out, string(x.ic.State)+"@"+x.at.Round(time.Millisecond).String())
	}
	return out
}

func TestComposerActiveIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		c := NewComposer(ComposerConfig{Send: rec.send, ContentType: "text/plain"})
		defer c.Stop()
		assert.Equal(t, StateIdle, c.State())

		// The first keystroke sends active at once, with the refresh
		// interval (RFC 3994 §3.2).
		c.Typing()
		got := rec.take()
		require.Len(t, got, 1)
		assert.Equal(t, IsComposing{State: StateActive, ContentType: "text/plain", Refresh: DefaultRefresh}, got[0].ic)
		assert.Equal(t, StateActive, c.State())

		// More typing within the idle timeout sends nothing.
		for range 3 {
			time.Sleep(10 * time.Second)
			c.Typing()
		}
		assert.Empty(t, rec.take())
		lastTyped := time.Now()

		// 15 s after the last keystroke: idle, with lastactive.
		time.Sleep(DefaultIdleTimeout - time.Millisecond)
		assert.Empty(t, rec.take())
		time.Sleep(2 * time.Millisecond)
		got = rec.take()
		require.Len(t, got, 1)
		assert.Equal(t, []string{"idle@45s"}, states(got))
		assert.Equal(t, IsComposing{State: StateIdle, LastActive: lastTyped, ContentType: "text/plain"}, got[0].ic)
		assert.Equal(t, StateIdle, c.State())

		// Nothing more while idle, not even refreshes.
		time.Sleep(10 * time.Minute)
		assert.Empty(t, rec.take())

		// Typing again: active again.
		c.Typing()
		assert.Equal(t, []string{"active@10m45.001s"}, states(rec.take()))
	})
}

func TestComposerRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		c := NewComposer(ComposerConfig{Send: rec.send})
		defer c.Stop()
		// Type every 5 s for 5 minutes: active is repeated at 9/10 of
		// the 120 s refresh, so before the receiver's timer runs out.
		for range 60 {
			c.Typing()
			time.Sleep(5 * time.Second)
		}
		assert.Equal(t, []string{"active@0s", "active@1m48s", "active@3m36s"}, states(rec.take()))
		// Then the user pauses: idle 15 s after the last keystroke (at
		// 295 s), and the refresh due at 324 s is not sent.
		time.Sleep(time.Minute)
		assert.Equal(t, []string{"idle@5m10s"}, states(rec.take()))
	})
}

func TestComposerSentAndStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		c := NewComposer(ComposerConfig{Send: rec.send, IdleTimeout: 5 * time.Second, Refresh: 60 * time.Second})
		c.Typing()
		time.Sleep(time.Second)
		// Sending the message ends composition without an idle
		// indication (RFC 3994 §3.2).
		c.Sent()
		assert.Equal(t, StateIdle, c.State())
		time.Sleep(5 * time.Minute)
		assert.Equal(t, []string{"active@0s"}, states(rec.take()))

		c.Typing()
		got := rec.take()
		require.Len(t, got, 1)
		assert.Equal(t, 60*time.Second, got[0].ic.Refresh)
		time.Sleep(3 * time.Second)
		c.Stop()
		c.Typing()
		time.Sleep(5 * time.Minute)
		assert.Empty(t, rec.take(), "nothing after Stop")
		assert.Equal(t, StateIdle, c.State())
	})
	assert.Panics(t, func() { NewComposer(ComposerConfig{}) })
}

func TestWatcher(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var mu sync.Mutex
		var changes []string
		w := NewWatcher(func(s State) {
			mu.Lock()
			defer mu.Unlock()
			changes = append(changes, string(s)+"@"+time.Since(start).String())
		})
		defer w.Stop()
		took := func() []string {
			synctest.Wait()
			mu.Lock()
			defer mu.Unlock()
			c := changes
			changes = nil
			return c
		}

		// Active with refresh 90: idle when 90 s pass with nothing new.
		w.Indication(&IsComposing{State: StateActive, Refresh: 90 * time.Second})
		assert.Equal(t, StateActive, w.State())
		time.Sleep(60 * time.Second)
		// A repeated active indication restarts the timer and is not a
		// change of state.
		w.Indication(&IsComposing{State: StateActive, Refresh: 90 * time.Second})
		time.Sleep(89 * time.Second)
		assert.Equal(t, []string{"active@0s"}, took())
		time.Sleep(2 * time.Second)
		assert.Equal(t, []string{"idle@2m30s"}, took())
		assert.Equal(t, StateIdle, w.State())

		// Without <refresh>, 120 s (RFC 3994 §3.3).
		w.Indication(&IsComposing{State: StateActive})
		time.Sleep(119 * time.Second)
		assert.Equal(t, []string{"active@2m31s"}, took())
		time.Sleep(2 * time.Second)
		assert.Equal(t, []string{"idle@4m31s"}, took())

		// An idle indication, an unknown state or a content message end
		// activity at once.
		for _, end := range []func(){
			func() { w.Indication(&IsComposing{State: StateIdle}) },
			func() { w.Indication(&IsComposing{State: "paused"}) },
			w.MessageReceived,
		} {
			w.Indication(&IsComposing{State: StateActive, Refresh: time.Minute})
			time.Sleep(time.Second)
			end()
			got := took()
			require.Len(t, got, 2)
			assert.Equal(t, StateIdle, w.State())
			time.Sleep(5 * time.Minute)
			assert.Empty(t, took(), "the refresh timer was stopped")
		}
		w.MessageReceived()
		assert.Empty(t, took(), "idle to idle is no change")

		// After Stop, nothing changes.
		w.Indication(&IsComposing{State: StateActive, Refresh: time.Minute})
		took()
		w.Stop()
		w.Indication(&IsComposing{State: StateIdle})
		w.MessageReceived()
		time.Sleep(5 * time.Minute)
		assert.Empty(t, took())
		assert.Equal(t, StateActive, w.State())
	})
}

// TestComposerToWatcher connects both ends through the XML encoding: while
// Alice types, Bob sees her active throughout; when she pauses he sees idle
// within the idle timeout; when she sends, the message makes her idle.
func TestComposerToWatcher(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var mu sync.Mutex
		var seen []string
		bob := NewWatcher(func(s State) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, string(s)+"@"+time.Since(start).String())
		})
		defer bob.Stop()
		alice := NewComposer(ComposerConfig{Send: func(ic *IsComposing) {
			b, err := ic.Marshal()
			if !assert.NoError(t, err) {
				return
			}
			got, err := ParseIsComposing(b)
			if !assert.NoError(t, err) {
				return
			}
			bob.Indication(got)
		}})
		defer alice.Stop()

		for range 100 { // 10 minutes of typing
			alice.Typing()
			time.Sleep(6 * time.Second)
			synctest.Wait()
			assert.Equal(t, StateActive, bob.State())
		}
		time.Sleep(10 * time.Second) // 16 s after the last keystroke
		synctest.Wait()
		assert.Equal(t, StateIdle, bob.State())

		alice.Typing()
		time.Sleep(time.Second)
		alice.Sent()
		bob.MessageReceived()
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		assert.Equal(t, []string{"active@0s", "idle@10m9s", "active@10m10s", "idle@10m11s"}, seen)
	})
}
