package cpim

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The IM of RFC 5438 §7.1.1.3. The RFC prints its headers without the
// blank line between the CPIM and MIME headers and without one before the
// body; they are added here, as a real message has them.
var rfc5438IM = crlfJoin(
	"From: Alice <im:alice@example.com>",
	"To: Bob <im:bob@example.com>",
	"NS: imdn <urn:ietf:params:imdn>",
	"imdn.Message-ID: 34jk324j",
	"DateTime: 2006-04-04T12:16:49-05:00",
	"imdn.Disposition-Notification: positive-delivery, negative-delivery",
	"",
	"Content-type: text/plain",
	"Content-length: 12",
	"",
	"Hello World",
	"")

// The XML of RFC 5438 §7.2.1.1 (delivery) and §7.2.1.2 (display), verbatim,
// wrapped in the CPIM headers printed with them (blank lines added as
// above, Content-length dropped).
const rfc5438Delivery = `<?xml version="1.0" encoding="UTF-8"?>
   <imdn xmlns="urn:ietf:params:xml:ns:imdn">
         <message-id>34jk324j</message-id>
         <datetime>2008-04-04T12:16:49-05:00</datetime>
        <recipient-uri>im:bob@example.com</recipient-uri>
         <original-recipient-uri
           >im:bob@example.com</original-recipient-uri>
         <delivery-notification>
            <status>
               <delivered/>
            </status>
         </delivery-notification>
       </imdn>`

const rfc5438Display = `<?xml version="1.0" encoding="UTF-8"?>
   <imdn xmlns="urn:ietf:params:xml:ns:imdn">
         <message-id>34jk324j</message-id>
         <datetime>2008-04-04T12:16:49-05:00</datetime>
        <recipient-uri>im:bob@example.com</recipient-uri>
         <original-recipient-uri
            >im:bob@example.com</original-recipient-uri>
         <display-notification>
            <status>
               <displayed/>
            </status>
         </display-notification>
       </imdn>`

func rfc5438Notification(id, xml string) []byte {
	return append(crlfJoin(
		"From: Bob <im:bob@example.com>",
		"To: Alice <im:alice@example.com>",
		"NS: imdn <urn:ietf:params:imdn>",
		"imdn.Message-ID: "+id,
		"",
		"Content-type: message/imdn+xml",
		"Content-Disposition: notification",
		"", ""), xml...)
}

func TestIMDNRequestRFCExample(t *testing.T) {
	m, err := Parse(rfc5438IM)
	require.NoError(t, err)
	assert.Equal(t, Address{"Alice", "im:alice@example.com"}, m.From)
	assert.Equal(t, "Hello World\r\n", string(m.Body))
	v, _ := m.ContentHeader("Content-Length")
	assert.Equal(t, "12", v)
	r, ok := m.IMDNRequest()
	require.True(t, ok)
	assert.Equal(t, IMDNRequest{MessageID: "34jk324j", Notify: []NotificationRequest{PositiveDelivery, NegativeDelivery}}, r)
	assert.True(t, r.Wants(NegativeDelivery))
	assert.False(t, r.Wants(Display))
	assert.False(t, m.IsNotification())
	_, err = m.Notification()
	require.ErrorIs(t, err, ErrNotNotification)
}

func TestIMDNRFCExamples(t *testing.T) {
	for _, tc := range []struct {
		id, xml string
		kind    NotificationKind
		status  Status
	}{
		{"d834jied93rf", rfc5438Delivery, KindDelivery, StatusDelivered},
		{"dfjkleriou432333", rfc5438Display, KindDisplay, StatusDisplayed},
	} {
		m, err := Parse(rfc5438Notification(tc.id, tc.xml))
		require.NoError(t, err)
		require.True(t, m.IsNotification())
		_, ok := m.IMDNRequest()
		assert.False(t, ok, "an IMDN asks for nothing")
		n, err := m.Notification()
		require.NoError(t, err)
		assert.Equal(t, "34jk324j", n.MessageID)
		assert.Equal(t, "2008-04-04T12:16:49-05:00", n.DateTime.Format(time.RFC3339))
		assert.Equal(t, "im:bob@example.com", n.RecipientURI)
		assert.Equal(t, "im:bob@example.com", n.OriginalRecipientURI)
		assert.Equal(t, tc.kind, n.Kind)
		assert.Equal(t, tc.status, n.Status)
		id, _ := m.Get(NamespaceIMDN, "Message-ID")
		assert.Equal(t, tc.id, id)
	}
}

func TestIMDNMarshal(t *testing.T) {
	n := &IMDN{
		MessageID:            "34jk324j",
		DateTime:             time.Date(2008, 4, 4, 12, 16, 49, 0, time.FixedZone("", -5*3600)),
		RecipientURI:         "im:bob@example.com",
		OriginalRecipientURI: "im:bob@example.com",
		Kind:                 KindDelivery,
		Status:               StatusDelivered,
	}
	b, err := n.Marshal()
	require.NoError(t, err)
	assert.Equal(t, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<imdn xmlns="urn:ietf:params:xml:ns:imdn"><message-id>34jk324j</message-id>`+
		`<datetime>2008-04-04T12:16:49-05:00</datetime><recipient-uri>im:bob@example.com</recipient-uri>`+
		`<original-recipient-uri>im:bob@example.com</original-recipient-uri>`+
		`<delivery-notification><status><delivered></delivered></status></delivery-notification></imdn>`, string(b))

	for kind, statuses := range map[NotificationKind][]Status{
		KindDelivery:   {StatusDelivered, StatusFailed, StatusForbidden, StatusError},
		KindDisplay:    {StatusDisplayed, StatusForbidden, StatusError},
		KindProcessing: {StatusProcessed, StatusStored, StatusForbidden, StatusError},
	} {
		for _, st := range statuses {
			n := &IMDN{MessageID: "m1", DateTime: time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC),
				Subject: "Hi <there> & you", SubjectLang: "en", Kind: kind, Status: st}
			b, err := n.Marshal()
			require.NoError(t, err, "%s %s", kind, st)
			back, err := ParseIMDN(b)
			require.NoError(t, err, "%s", b)
			assert.True(t, n.DateTime.Equal(back.DateTime))
			back.DateTime = n.DateTime
			assert.Equal(t, n, back)
			assert.Contains(t, string(b), `<subject xml:lang="en">Hi &lt;there&gt; &amp; you</subject>`)
		}
	}

	for name, bad := range map[string]*IMDN{
		"no message-id":      {DateTime: time.Now(), Kind: KindDisplay, Status: StatusDisplayed},
		"spaced message-id":  {MessageID: " x", DateTime: time.Now(), Kind: KindDisplay, Status: StatusDisplayed},
		"no datetime":        {MessageID: "x", Kind: KindDisplay, Status: StatusDisplayed},
		"year out of range":  {MessageID: "x", DateTime: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Kind: KindDisplay, Status: StatusDisplayed},
		"displayed delivery": {MessageID: "x", DateTime: time.Now(), Kind: KindDelivery, Status: StatusDisplayed},
		"delivered display":  {MessageID: "x", DateTime: time.Now(), Kind: KindDisplay, Status: StatusDelivered},
		"stored delivery":    {MessageID: "x", DateTime: time.Now(), Kind: KindDelivery, Status: StatusStored},
		"no kind":            {MessageID: "x", DateTime: time.Now(), Status: StatusError},
		"unknown status":     {MessageID: "x", DateTime: time.Now(), Kind: KindDelivery, Status: "lost"},
	} {
		_, err := bad.Marshal()
		assert.Error(t, err, name)
	}
}

func TestIMDNParseErrors(t *testing.T) {
	doc := func(inner string) string {
		return `<imdn xmlns="urn:ietf:params:xml:ns:imdn">` + inner + `</imdn>`
	}
	const head = `<message-id>1</message-id><datetime>2008-04-04T12:16:49Z</datetime>`
	const delivered = `<delivery-notification><status><delivered/></status></delivery-notification>`

	// Extensions in other namespaces are ignored, in <imdn> and <status>.
	n, err := ParseIMDN([]byte(doc(head + `<x:a xmlns:x="urn:x"/>` +
		`<display-notification><status><x:why xmlns:x="urn:x">because</x:why><forbidden/></status></display-notification>`)))
	require.NoError(t, err)
	assert.Equal(t, KindDisplay, n.Kind)
	assert.Equal(t, StatusForbidden, n.Status)

	for _, tc := range []struct {
		name, in string
		want     error
	}{
		{"no message-id", doc(`<datetime>2008-04-04T12:16:49Z</datetime>` + delivered), ErrInvalidDocument},
		{"empty message-id", doc(`<message-id> </message-id><datetime>2008-04-04T12:16:49Z</datetime>` + delivered), ErrInvalidDocument},
		{"two message-id", doc(`<message-id>1</message-id>` + head + delivered), ErrInvalidDocument},
		{"no datetime", doc(`<message-id>1</message-id>` + delivered), ErrInvalidDocument},
		{"bad datetime", doc(`<message-id>1</message-id><datetime>noon</datetime>` + delivered), ErrBadDateTime},
		{"two recipient-uri", doc(head + `<recipient-uri>a:b</recipient-uri><recipient-uri>a:c</recipient-uri>` + delivered), ErrInvalidDocument},
		{"two original-recipient-uri", doc(head + `<original-recipient-uri>a:b</original-recipient-uri><original-recipient-uri>a:c</original-recipient-uri>` + delivered), ErrInvalidDocument},
		{"two subject", doc(head + `<subject>a</subject><subject>b</subject>` + delivered), ErrInvalidDocument},
		{"no notification", doc(head), ErrInvalidDocument},
		{"two notifications", doc(head + delivered + `<display-notification><status><displayed/></status></display-notification>`), ErrInvalidDocument},
		{"same notification twice", doc(head + delivered + delivered), ErrInvalidDocument},
		{"no status", doc(head + `<delivery-notification/>`), ErrInvalidDocument},
		{"two status", doc(head + `<delivery-notification><status><delivered/></status><status><failed/></status></delivery-notification>`), ErrInvalidDocument},
		{"empty status", doc(head + `<delivery-notification><status/></delivery-notification>`), ErrInvalidDocument},
		{"two values", doc(head + `<delivery-notification><status><delivered/><failed/></status></delivery-notification>`), ErrInvalidDocument},
		{"wrong value", doc(head + `<delivery-notification><status><displayed/></status></delivery-notification>`), ErrInvalidDocument},
		{"unknown value", doc(head + `<display-notification><status><read/></status></display-notification>`), ErrInvalidDocument},
		{"wrong root", `<imdn xmlns="urn:other">` + head + delivered + `</imdn>`, ErrInvalidDocument},
		{"not XML", "delivered", ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseIMDN([]byte(tc.in))
			require.ErrorIs(t, err, tc.want)
		})
	}
}

func TestNotificationFor(t *testing.T) {
	alice := Address{"Alice", "sip:alice@example.com"}
	bob := Address{"Bob", "sip:bob@example.com"}

	// Alice asks for delivery and display notifications.
	im := Wrap(alice, bob, "text/plain", []byte("Hello"))
	im.DateTime = time.Date(2024, 2, 3, 4, 5, 6, 0, time.UTC)
	im.Subject = []Subject{{"en", "greeting"}}
	id := im.RequestIMDN("", PositiveDelivery, Display)
	assert.Len(t, id, 26)
	im.Add(NamespaceIMDN, "IMDN-Record-Route", "<sip:relay1@example.net>")
	im.Add(NamespaceIMDN, "IMDN-Record-Route", "<sip:relay2@example.net>")
	raw, err := im.Marshal()
	require.NoError(t, err)
	assert.Contains(t, string(raw), "NS: imdn <urn:ietf:params:imdn>\r\n")
	assert.Contains(t, string(raw), "imdn.Disposition-Notification: positive-delivery, display\r\n")

	// Bob receives it and answers.
	got, err := Parse(raw)
	require.NoError(t, err)
	req, ok := got.IMDNRequest()
	require.True(t, ok)
	assert.Equal(t, id, req.MessageID)
	for _, tc := range []struct {
		kind   NotificationKind
		status Status
	}{{KindDelivery, StatusDelivered}, {KindDisplay, StatusDisplayed}, {KindDisplay, StatusError}} {
		note, err := NotificationFor(got, tc.kind, tc.status)
		require.NoError(t, err)
		assert.Equal(t, bob, note.From)
		assert.Equal(t, []Address{alice}, note.To)
		assert.False(t, note.DateTime.IsZero())
		noteID, ok := note.Get(NamespaceIMDN, "Message-ID")
		require.True(t, ok)
		assert.NotEqual(t, id, noteID, "an IMDN has its own Message-ID")
		assert.Equal(t, []string{"<sip:relay1@example.net>", "<sip:relay2@example.net>"}, note.GetAll(NamespaceIMDN, "IMDN-Route"))
		assert.Empty(t, note.GetAll(NamespaceIMDN, "Disposition-Notification"))
		assert.Empty(t, note.GetAll(NamespaceIMDN, "IMDN-Record-Route"))

		// Alice receives the IMDN.
		wire, err := note.Marshal()
		require.NoError(t, err)
		assert.Contains(t, string(wire), "\r\n\r\nContent-Type: message/imdn+xml\r\nContent-Disposition: notification\r\n\r\n<?xml")
		back, err := Parse(wire)
		require.NoError(t, err)
		require.True(t, back.IsNotification())
		n, err := back.Notification()
		require.NoError(t, err)
		assert.Equal(t, &IMDN{
			MessageID: id, DateTime: im.DateTime,
			RecipientURI: bob.URI, OriginalRecipientURI: bob.URI,
			Subject: "greeting", SubjectLang: "en",
			Kind: tc.kind, Status: tc.status,
		}, n)

		// No IMDN for an IMDN (RFC 5438 §7.2.1).
		_, err = NotificationFor(back, KindDisplay, StatusDisplayed)
		require.ErrorIs(t, err, ErrNotRequested)
	}

	// Not requested: negative delivery, processing.
	_, err = NotificationFor(got, KindDelivery, StatusFailed)
	require.ErrorIs(t, err, ErrNotRequested)
	_, err = NotificationFor(got, KindProcessing, StatusProcessed)
	require.ErrorIs(t, err, ErrNotRequested)
	_, err = NotificationFor(got, KindDelivery, StatusDisplayed)
	require.ErrorIs(t, err, ErrInvalidDocument)

	// Original-To fills original-recipient-uri (RFC 5438 §11.1.4).
	got.Add(NamespaceIMDN, "Original-To", `"The List" <sip:list@example.com>`)
	note, err := NotificationFor(got, KindDelivery, StatusDelivered)
	require.NoError(t, err)
	n, err := note.Notification()
	require.NoError(t, err)
	assert.Equal(t, "sip:list@example.com", n.OriginalRecipientURI)
	assert.Equal(t, bob.URI, n.RecipientURI)
	got.Set(NamespaceIMDN, "Original-To", "nonsense")
	_, err = NotificationFor(got, KindDelivery, StatusDelivered)
	require.ErrorIs(t, err, ErrBadAddress)

	// Missing pieces.
	noID := Wrap(alice, bob, "text/plain", nil)
	_, err = NotificationFor(noID, KindDisplay, StatusDisplayed)
	require.ErrorIs(t, err, ErrMissingHeader)
	noDate := Wrap(alice, bob, "text/plain", nil)
	noDate.RequestIMDN("x1", Display)
	noDate.DateTime = time.Time{}
	_, err = NotificationFor(noDate, KindDisplay, StatusDisplayed)
	require.ErrorIs(t, err, ErrMissingHeader)
	noTo := Wrap(alice, bob, "text/plain", nil)
	noTo.RequestIMDN("x1", Display)
	noTo.To = nil
	_, err = NotificationFor(noTo, KindDisplay, StatusDisplayed)
	require.ErrorIs(t, err, ErrMissingHeader)
}

func TestIMDNRequestHeader(t *testing.T) {
	m := &Message{From: Address{"", "im:a@x"}, To: []Address{{"", "im:b@x"}}, ContentType: "text/plain"}
	_, ok := m.IMDNRequest()
	assert.False(t, ok)
	id := m.RequestIMDN("abc", Display)
	assert.Equal(t, "abc", id)
	assert.False(t, m.DateTime.IsZero(), "RequestIMDN sets DateTime (RFC 5438 §7.1.1.2)")
	m.RequestIMDN("abc", NegativeDelivery, Processing)
	assert.Len(t, m.Headers, 2, "RequestIMDN replaces its headers")

	// Any prefix may name the IMDN namespace; parameters and unknown
	// values are tolerated; an empty value asks for nothing.
	raw := crlfJoin("From: <im:a@x>", "To: <im:b@x>", "NS: z <urn:ietf:params:imdn>",
		"z.Message-ID: m-1", "z.Disposition-Notification: display;x=1 , future-thing,,positive-delivery",
		"", "Content-Type: text/plain", "", "")
	got, err := Parse(raw)
	require.NoError(t, err)
	r, ok := got.IMDNRequest()
	require.True(t, ok)
	assert.Equal(t, []NotificationRequest{Display, "future-thing", PositiveDelivery}, r.Notify)
	got.Set(NamespaceIMDN, "Disposition-Notification", "")
	_, ok = got.IMDNRequest()
	assert.False(t, ok)
	assert.True(t, strings.HasPrefix(string(mustMarshal(t, got)), "From: <im:a@x>\r\n"))
}

func mustMarshal(t *testing.T, m *Message) []byte {
	t.Helper()
	b, err := m.Marshal()
	require.NoError(t, err)
	return b
}
