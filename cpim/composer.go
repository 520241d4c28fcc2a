package cpim

import (
	"sync"
	"time"
)

// ComposerConfig configures a Composer.
type ComposerConfig struct {
	// Send transmits an indication to the peer, usually as the body of an
	// MSRP SEND with Content-Type ContentTypeIsComposing (or wrapped in
	// CPIM). It is called with the Composer's lock held, from the
	// goroutine of Typing or of a timer, so indications go out in order;
	// it must not call the Composer's methods. Required.
	Send func(*IsComposing)
	// IdleTimeout is how long the user may stop typing before the state
	// becomes idle and an idle indication is sent. Default
	// DefaultIdleTimeout (15 s, RFC 3994 §3.2).
	IdleTimeout time.Duration
	// Refresh is the refresh interval advertised in active indications.
	// While the user keeps typing, the active indication is sent again
	// after nine tenths of it, so that it arrives before the receiver's
	// refresh timer expires. Default DefaultRefresh (120 s); RFC 3994
	// §3.2 says it SHOULD be no shorter than 60 s.
	Refresh time.Duration
	// ContentType, if set, goes in the <contenttype> of indications
	// ("text", "text/plain", ...).
	ContentType string
}

// Composer is the sending side of RFC 3994 (§3.2, Figure 1): call Typing
// whenever the user adds or edits content and Sent when the message goes
// out. Composer sends an active indication when composition starts,
// repeats it before the advertised refresh interval runs out while the
// user keeps typing, and sends an idle indication after IdleTimeout
// without typing. Sending the message returns to idle without an
// indication (§3.2: "no idle state indication is needed").
//
// Its timers are time.AfterFunc timers, so a test can drive it inside a
// testing/synctest bubble. A Composer is safe for concurrent use.
type Composer struct {
	mu         sync.Mutex
	cfg        ComposerConfig
	state      State
	closed     bool
	lastTyped  time.Time
	refreshDue time.Time
	idle       *time.Timer
	refresh    *time.Timer
}

// NewComposer returns an idle Composer. It panics if cfg.Send is nil.
func NewComposer(cfg ComposerConfig) *Composer {
	if cfg.Send == nil {
		panic("cpim: ComposerConfig.Send is nil")
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Refresh < time.Second { // the wire carries whole seconds: less would flood the peer
		cfg.Refresh = DefaultRefresh
	}
	return &Composer{cfg: cfg, state: StateIdle}
}

// State returns the composing state last signalled.
func (c *Composer) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Typing records that the user added or edited content now. From idle it
// sends an active indication at once; while active it only postpones the
// idle timeout.
func (c *Composer) Typing() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.lastTyped = time.Now()
	if c.state == StateActive {
		return // the idle timer checks lastTyped when it fires
	}
	c.state = StateActive
	c.sendActive()
	if c.idle == nil {
		c.idle = time.AfterFunc(c.cfg.IdleTimeout, c.idleFired)
	} else {
		c.idle.Reset(c.cfg.IdleTimeout)
	}
}

// Sent records that the message being composed was sent: the state returns
// to idle without an indication and the timers stop.
func (c *Composer) Sent() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.toIdle()
}

// Stop stops the timers for good; later calls do nothing and nothing more
// is sent. It does not send an idle indication.
func (c *Composer) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	c.toIdle()
}

// toIdle sets the idle state and stops both timers.
func (c *Composer) toIdle() {
	c.state = StateIdle
	if c.idle != nil {
		c.idle.Stop()
	}
	if c.refresh != nil {
		c.refresh.Stop()
	}
}

// resendAfter is when, after an active indication, the next one is due.
func (c *Composer) resendAfter() time.Duration { return c.cfg.Refresh / 10 * 9 }

// sendActive sends an active indication and arms the refresh timer (each
// transmission resets it, §3.2). Called with mu held.
func (c *Composer) sendActive() {
	c.cfg.Send(&IsComposing{State: StateActive, ContentType: c.cfg.ContentType, Refresh: c.cfg.Refresh})
	d := c.resendAfter()
	c.refreshDue = time.Now().Add(d)
	if c.refresh == nil {
		c.refresh = time.AfterFunc(d, c.refreshFired)
	} else {
		c.refresh.Reset(d)
	}
}

// idleFired runs when the idle timer expires: idle if the user has not
// typed for IdleTimeout, else the timer is re-armed for the rest.
func (c *Composer) idleFired() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.state != StateActive {
		return
	}
	if rest := c.cfg.IdleTimeout - time.Since(c.lastTyped); rest > 0 {
		c.idle.Reset(rest)
		return
	}
	c.toIdle()
	c.cfg.Send(&IsComposing{State: StateIdle, LastActive: c.lastTyped, ContentType: c.cfg.ContentType})
}

// refreshFired runs when the refresh timer expires: the user is still
// composing (else the state would be idle), so active is sent again.
func (c *Composer) refreshFired() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.state != StateActive {
		return
	}
	if rest := time.Until(c.refreshDue); rest > 0 {
		c.refresh.Reset(rest) // a stale run after a Reset
		return
	}
	c.sendActive()
}

// Watcher is the receiving side of RFC 3994 (§3.3, Figure 2): it tracks
// whether the peer is composing. Feed it the indications received
// (Indication) and the content messages received (MessageReceived). The
// peer becomes active on an active indication and idle on an idle (or
// unknown) indication, on a content message, or when the refresh interval
// of the last active indication (DefaultRefresh if it had none) runs out
// with nothing new.
//
// Like Composer it uses time.AfterFunc, and it is safe for concurrent use.
type Watcher struct {
	mu       sync.Mutex
	onChange func(State)
	state    State
	closed   bool
	deadline time.Time
	timer    *time.Timer
}

// NewWatcher returns a Watcher in the idle state. onChange, if not nil, is
// called on each change of state, with the Watcher's lock held (it must
// not call the Watcher's methods), from the goroutine of Indication or
// MessageReceived or of the refresh timer.
func NewWatcher(onChange func(State)) *Watcher {
	return &Watcher{onChange: onChange, state: StateIdle}
}

// State returns the peer's composing state.
func (w *Watcher) State() State {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state
}

// Indication records a received isComposing document.
func (w *Watcher) Indication(ic *IsComposing) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	if !ic.Active() {
		w.stopTimer()
		w.set(StateIdle)
		return
	}
	d := ic.Refresh
	if d <= 0 {
		d = DefaultRefresh
	}
	w.deadline = time.Now().Add(d)
	if w.timer == nil {
		w.timer = time.AfterFunc(d, w.expired)
	} else {
		w.timer.Reset(d)
	}
	w.set(StateActive)
}

// MessageReceived records that a content message arrived from the peer,
// which ends its composing (§3.3).
func (w *Watcher) MessageReceived() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.stopTimer()
	w.set(StateIdle)
}

// Stop stops the refresh timer for good; the state no longer changes and
// onChange is not called again.
func (w *Watcher) Stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	w.stopTimer()
}

func (w *Watcher) stopTimer() {
	if w.timer != nil {
		w.timer.Stop()
	}
}

func (w *Watcher) set(s State) {
	if w.state == s {
		return
	}
	w.state = s
	if w.onChange != nil {
		w.onChange(s)
	}
}

// expired runs when the refresh interval of the last active indication
// ends.
func (w *Watcher) expired() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.state != StateActive {
		return
	}
	if rest := time.Until(w.deadline); rest > 0 {
		w.timer.Reset(rest) // a stale run after a Reset
		return
	}
	w.set(StateIdle)
}
