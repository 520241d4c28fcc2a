package cpim

import (
	"encoding/xml"
	"strconv"
	"strings"
	"time"
)

// NamespaceIsComposing is the XML namespace of isComposing documents (RFC
// 3994 §6).
const NamespaceIsComposing = "urn:ietf:params:xml:ns:im-iscomposing"

// Timer defaults of RFC 3994.
const (
	// DefaultIdleTimeout is how long a composer may pause before it is
	// idle: "the idle timeout SHOULD have a default value of 15 seconds"
	// (§3.2).
	DefaultIdleTimeout = 15 * time.Second
	// DefaultRefresh is the refresh interval a receiver assumes when an
	// active indication carries none (§3.2, §3.3), and the interval
	// Composer advertises by default. §3.2: it SHOULD be no shorter than
	// 60 seconds.
	DefaultRefresh = 120 * time.Second
)

// State is the composing state of RFC 3994 §3.1.
type State string

// The states RFC 3994 defines. A receiver treats any other token as idle
// (§3.5).
const (
	StateIdle   State = "idle"
	StateActive State = "active"
)

// IsComposing is an application/im-iscomposing+xml document (RFC 3994
// §3.4, §6.1).
type IsComposing struct {
	// State is mandatory: StateActive or StateIdle (other tokens are
	// allowed by the schema and mean idle to a receiver).
	State State
	// LastActive is when the user last added or edited content (§3.5);
	// the zero Time omits it.
	LastActive time.Time
	// ContentType is the kind of content being composed, a media type
	// ("text") or type/subtype ("text/plain") (§3.5); optional.
	ContentType string
	// Refresh is the interval within which the composer will send another
	// active indication (§3.2), written in whole seconds (rounded up); 0
	// omits it, and the receiver then assumes DefaultRefresh.
	Refresh time.Duration
}

// Active reports whether the document says the peer is composing: its state
// is "active" (anything else counts as idle, RFC 3994 §3.5).
func (ic *IsComposing) Active() bool { return ic.State == StateActive }

// isComposingOut is the element tree Marshal writes: children unqualified,
// so they inherit the default namespace declared on the root.
type isComposingOut struct {
	XMLName     xml.Name `xml:"urn:ietf:params:xml:ns:im-iscomposing isComposing"`
	State       string   `xml:"state"`
	LastActive  string   `xml:"lastactive,omitempty"`
	ContentType string   `xml:"contenttype,omitempty"`
	Refresh     string   `xml:"refresh,omitempty"`
}

// isComposingIn is what Parse reads: only elements of the isComposing
// namespace; extension elements of other namespaces are ignored (§3.5).
type isComposingIn struct {
	XMLName     xml.Name `xml:"urn:ietf:params:xml:ns:im-iscomposing isComposing"`
	State       []string `xml:"urn:ietf:params:xml:ns:im-iscomposing state"`
	LastActive  []string `xml:"urn:ietf:params:xml:ns:im-iscomposing lastactive"`
	ContentType []string `xml:"urn:ietf:params:xml:ns:im-iscomposing contenttype"`
	Refresh     []string `xml:"urn:ietf:params:xml:ns:im-iscomposing refresh"`
}

// Marshal encodes ic as an XML document with encoding/xml.
func (ic *IsComposing) Marshal() ([]byte, error) {
	state := string(ic.State)
	if state == "" || strings.TrimSpace(state) != state {
		return nil, errorf(ErrInvalidDocument, "state %q", state)
	}
	out := isComposingOut{State: state, ContentType: strings.TrimSpace(ic.ContentType)}
	if !ic.LastActive.IsZero() {
		s, err := formatDateTime(ic.LastActive, "lastactive")
		if err != nil {
			return nil, err
		}
		out.LastActive = s
	}
	switch {
	case ic.Refresh < 0:
		return nil, errorf(ErrInvalidDocument, "negative refresh %v", ic.Refresh)
	case ic.Refresh > 0:
		secs := (ic.Refresh + time.Second - 1) / time.Second
		out.Refresh = strconv.FormatInt(int64(secs), 10)
	}
	return marshalXML(out)
}

// ParseIsComposing parses an application/im-iscomposing+xml document with
// the default limits. See Parser.ParseIsComposing.
func ParseIsComposing(b []byte) (*IsComposing, error) {
	return Parser{}.ParseIsComposing(b)
}

// ParseIsComposing parses an application/im-iscomposing+xml document (RFC
// 3994 §6.1): an <isComposing> root in the isComposing namespace with one
// <state> and at most one each of <lastactive> (an xs:dateTime),
// <contenttype> and <refresh> (a positive integer of seconds). Elements of
// other namespaces are ignored. The document is checked by the XML limits
// of p first.
func (p Parser) ParseIsComposing(b []byte) (*IsComposing, error) {
	var in isComposingIn
	if err := p.decodeXML(b, &in); err != nil {
		return nil, err
	}
	state, _, err := single(in.State, "state", true)
	if err != nil {
		return nil, err
	}
	if state == "" {
		return nil, errorf(ErrInvalidDocument, "empty <state>")
	}
	ic := &IsComposing{State: State(state)}
	if s, ok, err := single(in.LastActive, "lastactive", false); err != nil {
		return nil, err
	} else if ok {
		if ic.LastActive, err = parseXSDateTime(s); err != nil {
			return nil, err
		}
	}
	if ic.ContentType, _, err = single(in.ContentType, "contenttype", false); err != nil {
		return nil, err
	}
	if s, ok, err := single(in.Refresh, "refresh", false); err != nil {
		return nil, err
	} else if ok {
		if ic.Refresh, err = parsePositive(s, "refresh"); err != nil {
			return nil, err
		}
	}
	return ic, nil
}
