package cpim

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// sentinels are the errors every failure must wrap.
var sentinels = []error{
	ErrMalformed, ErrMissingHeader, ErrDuplicateHeader, ErrBadDateTime, ErrBadAddress,
	ErrUndeclaredPrefix, ErrHeaderTooLarge, ErrTooManyHeaders, ErrXMLTooLarge, ErrXMLTooDeep,
	ErrXMLDeclaration, ErrInvalidDocument, ErrNotNotification, ErrNotRequested,
}

func checkSentinel(t *testing.T, err error) {
	t.Helper()
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("error wraps no sentinel: %v", err)
}

// FuzzParse checks that Parse never panics, that its errors wrap a
// sentinel, and that an accepted message survives Marshal and Parse: the
// second encoding equals the first. (The re-parse allows a larger header
// block: Marshal may add quotes, spaces and CRs.)
func FuzzParse(f *testing.F) {
	f.Add(rfc3862Example)
	f.Add(rfc5438IM)
	f.Add(rfc5438Notification("d834jied93rf", rfc5438Delivery))
	f.Add([]byte("From: <sip:a@x>\nTo: \"B\\\"\\u00e9\" <sip:b@x>\ncc: a, b <tel:1>\nNS: <urn:d>\nX:;p=\"q\" v\n\ncontent-type: a/b\n\tfolded\n\nbody"))
	f.Add([]byte("From: <im:a@x>\r\nTo: <im:b@x>\r\nSubject:;lang=en \\t\\uD83D\\uDE00\\\r\nDateTime: 2000-01-01t00:00:00.5z\r\n\r\nContent-Type: x/y"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			checkSentinel(t, err)
			return
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("accepted message does not marshal: %v\n%q", err, data)
		}
		m2, err := Parser{MaxHeaderBytes: 1 << 20}.Parse(out)
		if err != nil {
			t.Fatalf("marshalled message does not parse: %v\n%q", err, out)
		}
		out2, err := m2.Marshal()
		if err != nil {
			t.Fatalf("second marshal: %v", err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("unstable:\n%q\n%q", out, out2)
		}
		if !m.DateTime.Equal(m2.DateTime) || !bytes.Equal(m.Body, m2.Body) {
			t.Fatalf("DateTime or Body changed")
		}
		// The IMDN accessors must not panic either.
		if _, ok := m.IMDNRequest(); ok {
			_, _ = NotificationFor(m, KindDisplay, StatusDisplayed)
		}
		if m.IsNotification() {
			if _, err := m.Notification(); err != nil {
				checkSentinel(t, err)
			}
		}
	})
}

// FuzzXML feeds the same bytes to ParseIsComposing and ParseIMDN and checks
// the same properties as FuzzParse for each.
func FuzzXML(f *testing.F) {
	f.Add([]byte(rfc3994Active))
	f.Add([]byte(rfc3994Idle))
	f.Add([]byte(rfc5438Delivery))
	f.Add([]byte(rfc5438Display))
	f.Add([]byte(billionLaughs))
	f.Add([]byte(`<imdn xmlns="urn:ietf:params:xml:ns:imdn"><message-id>1</message-id><datetime>2008-04-04T12:16:49</datetime>` +
		`<subject xml:lang="en"> s </subject><processing-notification><status><stored/></status></processing-notification></imdn>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if ic, err := ParseIsComposing(data); err != nil {
			checkSentinel(t, err)
		} else {
			out, err := ic.Marshal()
			if err != nil {
				t.Fatalf("accepted isComposing does not marshal: %v\n%q", err, data)
			}
			ic2, err := ParseIsComposing(out)
			if err != nil {
				t.Fatalf("marshalled isComposing does not parse: %v\n%q", err, out)
			}
			out2, _ := ic2.Marshal()
			if !bytes.Equal(out, out2) || !ic.LastActive.Equal(ic2.LastActive) {
				t.Fatalf("unstable:\n%q\n%q", out, out2)
			}
		}
		if n, err := ParseIMDN(data); err != nil {
			checkSentinel(t, err)
		} else {
			out, err := n.Marshal()
			if err != nil {
				t.Fatalf("accepted IMDN does not marshal: %v\n%q", err, data)
			}
			n2, err := ParseIMDN(out)
			if err != nil {
				t.Fatalf("marshalled IMDN does not parse: %v\n%q", err, out)
			}
			out2, _ := n2.Marshal()
			if !bytes.Equal(out, out2) || !n.DateTime.Equal(n2.DateTime) {
				t.Fatalf("unstable:\n%q\n%q", out, out2)
			}
			n2.DateTime = n.DateTime
			if *n != *n2 {
				t.Fatalf("changed: %+v %+v", n, n2)
			}
		}
	})
}

// The fuzz seeds also run as plain tests; this keeps one deterministic
// check of the time-zone handling the fuzzers rely on.
func TestDateTimeKeepsOffset(t *testing.T) {
	m, err := Parse(crlfJoin("From: <im:a@x>", "To: <im:b@x>", "DateTime: 2000-01-01T00:00:00+14:00", "", "Content-Type: a/b", "", ""))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.DateTime.Format(time.RFC3339); got != "2000-01-01T00:00:00+14:00" {
		t.Fatal(got)
	}
}
