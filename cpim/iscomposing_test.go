package cpim

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The two examples of RFC 3994 §5, verbatim. (Note that their
// xsi:schemaLocation names "im-composing", not "im-iscomposing"; it is an
// attribute and plays no part in parsing.)
const (
	rfc3994Active = `<?xml version="1.0" encoding="UTF-8"?>
   <isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"
     xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
     xsi:schemaLocation="urn:ietf:params:xml:ns:im-composing
     iscomposing.xsd">
     <state>active</state>
     <contenttype>text/plain</contenttype>
     <refresh>90</refresh>
   </isComposing>`
	rfc3994Idle = `<?xml version="1.0" encoding="UTF-8"?>
   <isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"
     xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
     xsi:schemaLocation="urn:ietf:params:xml:ns:im-composing
     iscomposing.xsd">
     <state>idle</state>
     <lastactive>2003-01-27T10:43:00Z</lastactive>
     <contenttype>audio</contenttype>
   </isComposing>`
)

func TestIsComposingRFCExamples(t *testing.T) {
	ic, err := ParseIsComposing([]byte(rfc3994Active))
	require.NoError(t, err)
	assert.Equal(t, &IsComposing{State: StateActive, ContentType: "text/plain", Refresh: 90 * time.Second}, ic)
	assert.True(t, ic.Active())

	ic, err = ParseIsComposing([]byte(rfc3994Idle))
	require.NoError(t, err)
	assert.Equal(t, StateIdle, ic.State)
	assert.False(t, ic.Active())
	assert.Equal(t, "audio", ic.ContentType)
	assert.Equal(t, time.Date(2003, 1, 27, 10, 43, 0, 0, time.UTC), ic.LastActive)
	assert.Zero(t, ic.Refresh)
}

func TestIsComposingMarshal(t *testing.T) {
	ic := &IsComposing{
		State:       StateActive,
		LastActive:  time.Date(2003, 1, 27, 10, 43, 0, 0, time.UTC),
		ContentType: "text/plain",
		Refresh:     90 * time.Second,
	}
	b, err := ic.Marshal()
	require.NoError(t, err)
	assert.Equal(t, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state>`+
		`<lastactive>2003-01-27T10:43:00Z</lastactive><contenttype>text/plain</contenttype>`+
		`<refresh>90</refresh></isComposing>`, string(b))
	back, err := ParseIsComposing(b)
	require.NoError(t, err)
	assert.Equal(t, ic, back)

	// Optional elements are omitted; refresh rounds up to whole seconds.
	b, err = (&IsComposing{State: StateIdle}).Marshal()
	require.NoError(t, err)
	assert.NotContains(t, string(b), "refresh")
	assert.NotContains(t, string(b), "lastactive")
	b, err = (&IsComposing{State: StateActive, Refresh: 1500 * time.Millisecond}).Marshal()
	require.NoError(t, err)
	assert.Contains(t, string(b), "<refresh>2</refresh>")

	// Text is escaped by encoding/xml.
	b, err = (&IsComposing{State: "x<&>y"}).Marshal()
	require.NoError(t, err)
	back, err = ParseIsComposing(b)
	require.NoError(t, err)
	assert.Equal(t, State("x<&>y"), back.State)
	assert.False(t, back.Active(), "unknown states mean idle (RFC 3994 §3.5)")

	for _, bad := range []*IsComposing{
		{},
		{State: " active"},
		{State: StateActive, Refresh: -time.Second},
		{State: StateActive, LastActive: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		_, err := bad.Marshal()
		assert.Error(t, err, "%+v", bad)
	}
}

func TestIsComposingParse(t *testing.T) {
	doc := func(inner string) []byte {
		return []byte(`<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing">` + inner + `</isComposing>`)
	}
	// Tolerated: white space, extensions in other namespaces, a zoneless
	// xs:dateTime, a leading "+".
	ic, err := ParseIsComposing(doc(`<state> active </state><refresh>+60</refresh>` +
		`<lastactive>2003-01-27T10:43:00.25</lastactive>` +
		`<x:ext xmlns:x="urn:example:ext"><x:state>idle</x:state></x:ext>`))
	require.NoError(t, err)
	assert.Equal(t, StateActive, ic.State)
	assert.Equal(t, time.Minute, ic.Refresh)
	assert.Equal(t, time.Date(2003, 1, 27, 10, 43, 0, 250_000_000, time.UTC), ic.LastActive)

	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"no state", doc(`<refresh>60</refresh>`), ErrInvalidDocument},
		{"empty state", doc(`<state> </state>`), ErrInvalidDocument},
		{"two states", doc(`<state>active</state><state>idle</state>`), ErrInvalidDocument},
		{"state in another namespace", doc(`<state xmlns="urn:other">active</state>`), ErrInvalidDocument},
		{"two refresh", doc(`<state>active</state><refresh>60</refresh><refresh>60</refresh>`), ErrInvalidDocument},
		{"zero refresh", doc(`<state>active</state><refresh>0</refresh>`), ErrInvalidDocument},
		{"negative refresh", doc(`<state>active</state><refresh>-5</refresh>`), ErrInvalidDocument},
		{"text refresh", doc(`<state>active</state><refresh>soon</refresh>`), ErrInvalidDocument},
		{"huge refresh", doc(`<state>active</state><refresh>99999999999999999999</refresh>`), ErrInvalidDocument},
		{"refresh overflowing Duration", doc(`<state>active</state><refresh>9223372036</refresh>`), ErrInvalidDocument},
		{"bad lastactive", doc(`<state>idle</state><lastactive>yesterday</lastactive>`), ErrBadDateTime},
		{"two contenttype", doc(`<state>idle</state><contenttype>a</contenttype><contenttype>b</contenttype>`), ErrInvalidDocument},
		{"wrong root", []byte(`<isTyping xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state></isTyping>`), ErrInvalidDocument},
		{"no namespace", []byte(`<isComposing><state>active</state></isComposing>`), ErrInvalidDocument},
		{"not XML", []byte(`active`), ErrMalformed},
		{"empty", nil, ErrMalformed},
		{"unclosed", []byte(`<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state>`), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseIsComposing(tc.in)
			require.ErrorIs(t, err, tc.want)
		})
	}
	// The largest refresh that fits.
	ic, err = ParseIsComposing(doc(`<state>active</state><refresh>9223372035</refresh>`))
	require.NoError(t, err)
	assert.Equal(t, 9223372035*time.Second, ic.Refresh)
	assert.True(t, strings.HasPrefix(ic.Refresh.String(), "2562047h"))
}
