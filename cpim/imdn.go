package cpim

import (
	"crypto/rand"
	"encoding/xml"
	"fmt"
	"strings"
	"time"
)

// NamespaceIMDNXML is the XML namespace of IMDN documents (RFC 5438 §11.1).
// (NamespaceIMDN is the different namespace of the CPIM headers.)
const NamespaceIMDNXML = "urn:ietf:params:xml:ns:imdn"

// NotificationRequest is a value of the imdn.Disposition-Notification
// header: a kind of IMDN the sender asks for (RFC 5438 §6.2, §7.1.1.3, §10).
type NotificationRequest string

// The requests RFC 5438 §10 defines. Others may appear; a recipient ignores
// values it does not understand (§7.2.1).
const (
	PositiveDelivery NotificationRequest = "positive-delivery"
	NegativeDelivery NotificationRequest = "negative-delivery"
	Processing       NotificationRequest = "processing"
	Display          NotificationRequest = "display"
)

// NotificationKind is the kind of an IMDN: the name of the element that
// carries its status (RFC 5438 §11.1.6).
type NotificationKind string

// The kinds of IMDN (RFC 5438 §5).
const (
	KindDelivery   NotificationKind = "delivery-notification"
	KindDisplay    NotificationKind = "display-notification"
	KindProcessing NotificationKind = "processing-notification"
)

// Status is the result an IMDN reports: the element inside <status> (RFC
// 5438 §11.1.7).
type Status string

// The statuses of RFC 5438 §11.1.7. Delivery notifications use delivered,
// failed, forbidden and error; display notifications displayed, forbidden
// and error; processing notifications processed, stored, forbidden and
// error.
const (
	StatusDelivered Status = "delivered"
	StatusFailed    Status = "failed"
	StatusDisplayed Status = "displayed"
	StatusProcessed Status = "processed"
	StatusStored    Status = "stored"
	StatusForbidden Status = "forbidden"
	StatusError     Status = "error"
)

// validStatus reports whether s may appear in an IMDN of kind k (RFC 5438
// §11.1.9).
func validStatus(k NotificationKind, s Status) bool {
	switch s {
	case StatusForbidden, StatusError:
		return k == KindDelivery || k == KindDisplay || k == KindProcessing
	case StatusDelivered, StatusFailed:
		return k == KindDelivery
	case StatusDisplayed:
		return k == KindDisplay
	case StatusProcessed, StatusStored:
		return k == KindProcessing
	}
	return false
}

// IMDN is a message/imdn+xml document: a delivery, display or processing
// notification about one instant message (RFC 5438 §11.1).
type IMDN struct {
	// MessageID is the imdn.Message-ID of the message the notification is
	// about (§11.1.1). Required.
	MessageID string
	// DateTime is the DateTime of that message, when it was sent
	// (§11.1.2). Required.
	DateTime time.Time
	// RecipientURI is the URI of the final recipient (§11.1.3); optional.
	RecipientURI string
	// OriginalRecipientURI is the URI of the recipient the sender
	// addressed, from imdn.Original-To (§11.1.4); optional. The RFC's
	// schema has the two URIs appear together.
	OriginalRecipientURI string
	// Subject and SubjectLang repeat a Subject of the message (§11.1.5);
	// optional. SubjectLang is written as xml:lang.
	Subject     string
	SubjectLang string
	// Kind and Status say what happened to the message (§11.1.6,
	// §11.1.7).
	Kind   NotificationKind
	Status Status
}

type imdnOut struct {
	XMLName              xml.Name   `xml:"urn:ietf:params:xml:ns:imdn imdn"`
	MessageID            string     `xml:"message-id"`
	DateTime             string     `xml:"datetime"`
	RecipientURI         string     `xml:"recipient-uri,omitempty"`
	OriginalRecipientURI string     `xml:"original-recipient-uri,omitempty"`
	Subject              *imdnSubj  `xml:"subject"`
	Delivery             *notifyOut `xml:"delivery-notification"`
	Display              *notifyOut `xml:"display-notification"`
	Processing           *notifyOut `xml:"processing-notification"`
}

type imdnSubj struct {
	Lang string `xml:"http://www.w3.org/XML/1998/namespace lang,attr,omitempty"`
	Text string `xml:",chardata"`
}

// notifyOut is <status><VALUE/></status>; the inner element takes its name
// from the XMLName value.
type notifyOut struct {
	Status struct {
		Value struct{ XMLName xml.Name }
	} `xml:"status"`
}

type imdnIn struct {
	XMLName              xml.Name   `xml:"urn:ietf:params:xml:ns:imdn imdn"`
	MessageID            []string   `xml:"urn:ietf:params:xml:ns:imdn message-id"`
	DateTime             []string   `xml:"urn:ietf:params:xml:ns:imdn datetime"`
	RecipientURI         []string   `xml:"urn:ietf:params:xml:ns:imdn recipient-uri"`
	OriginalRecipientURI []string   `xml:"urn:ietf:params:xml:ns:imdn original-recipient-uri"`
	Subject              []imdnSubj `xml:"urn:ietf:params:xml:ns:imdn subject"`
	Delivery             []notifyIn `xml:"urn:ietf:params:xml:ns:imdn delivery-notification"`
	Display              []notifyIn `xml:"urn:ietf:params:xml:ns:imdn display-notification"`
	Processing           []notifyIn `xml:"urn:ietf:params:xml:ns:imdn processing-notification"`
}

type notifyIn struct {
	Status []struct {
		Children []struct{ XMLName xml.Name } `xml:",any"`
	} `xml:"urn:ietf:params:xml:ns:imdn status"`
}

// Marshal encodes n as an XML document with encoding/xml.
func (n *IMDN) Marshal() ([]byte, error) {
	if n.MessageID == "" || strings.TrimSpace(n.MessageID) != n.MessageID {
		return nil, errorf(ErrInvalidDocument, "message-id %q", n.MessageID)
	}
	if n.DateTime.IsZero() {
		return nil, errorf(ErrInvalidDocument, "no datetime")
	}
	dt, err := formatDateTime(n.DateTime, "datetime")
	if err != nil {
		return nil, err
	}
	if !validStatus(n.Kind, n.Status) {
		return nil, errorf(ErrInvalidDocument, "status %q in %q", n.Status, n.Kind)
	}
	out := imdnOut{
		MessageID:            n.MessageID,
		DateTime:             dt,
		RecipientURI:         strings.TrimSpace(n.RecipientURI),
		OriginalRecipientURI: strings.TrimSpace(n.OriginalRecipientURI),
	}
	if n.Subject != "" && !xmlText(n.Subject) {
		return nil, errorf(ErrMalformed, "IMDN subject %q holds characters XML cannot", n.Subject)
	}
	if n.Subject != "" || n.SubjectLang != "" {
		out.Subject = &imdnSubj{Lang: n.SubjectLang, Text: n.Subject}
	}
	st := &notifyOut{}
	st.Status.Value.XMLName.Local = string(n.Status)
	switch n.Kind {
	case KindDelivery:
		out.Delivery = st
	case KindDisplay:
		out.Display = st
	default:
		out.Processing = st
	}
	return marshalXML(out)
}

// ParseIMDN parses a message/imdn+xml document with the default limits.
// See Parser.ParseIMDN.
func ParseIMDN(b []byte) (*IMDN, error) { return Parser{}.ParseIMDN(b) }

// ParseIMDN parses a message/imdn+xml document (RFC 5438 §11.1): an <imdn>
// root in the IMDN namespace with one <message-id>, one <datetime>, at most
// one each of <recipient-uri>, <original-recipient-uri> and <subject>, and
// exactly one of <delivery-notification>, <display-notification> and
// <processing-notification>, whose <status> holds one status element valid
// for it. Extension elements of other namespaces are ignored. The document
// is checked by the XML limits of p first.
func (p Parser) ParseIMDN(b []byte) (*IMDN, error) {
	var in imdnIn
	if err := p.decodeXML(b, &in); err != nil {
		return nil, err
	}
	n := &IMDN{}
	var err error
	if n.MessageID, _, err = single(in.MessageID, "message-id", true); err != nil {
		return nil, err
	}
	if n.MessageID == "" {
		return nil, errorf(ErrInvalidDocument, "empty <message-id>")
	}
	dt, _, err := single(in.DateTime, "datetime", true)
	if err != nil {
		return nil, err
	}
	if n.DateTime, err = parseXSDateTime(dt); err != nil {
		return nil, err
	}
	if n.RecipientURI, _, err = single(in.RecipientURI, "recipient-uri", false); err != nil {
		return nil, err
	}
	if n.OriginalRecipientURI, _, err = single(in.OriginalRecipientURI, "original-recipient-uri", false); err != nil {
		return nil, err
	}
	switch len(in.Subject) {
	case 0:
	case 1:
		n.Subject, n.SubjectLang = in.Subject[0].Text, in.Subject[0].Lang
	default:
		return nil, errorf(ErrInvalidDocument, "<subject> appears %d times", len(in.Subject))
	}
	var notes []notifyIn
	for _, k := range []struct {
		kind  NotificationKind
		notes []notifyIn
	}{{KindDelivery, in.Delivery}, {KindDisplay, in.Display}, {KindProcessing, in.Processing}} {
		if len(k.notes) > 0 {
			n.Kind = k.kind
			notes = append(notes, k.notes...)
		}
	}
	if len(notes) != 1 {
		return nil, errorf(ErrInvalidDocument, "%d notification elements, want 1", len(notes))
	}
	if len(notes[0].Status) != 1 {
		return nil, errorf(ErrInvalidDocument, "<%s> has %d <status>, want 1", n.Kind, len(notes[0].Status))
	}
	for _, c := range notes[0].Status[0].Children {
		if c.XMLName.Space != NamespaceIMDNXML {
			continue // an extension
		}
		if n.Status != "" {
			return nil, errorf(ErrInvalidDocument, "<status> has several values")
		}
		n.Status = Status(c.XMLName.Local)
	}
	if !validStatus(n.Kind, n.Status) {
		return nil, errorf(ErrInvalidDocument, "status %q in <%s>", n.Status, n.Kind)
	}
	return n, nil
}

// NewMessageID returns a random imdn.Message-ID: 128 bits from crypto/rand
// as 26 base32 characters, beyond the 64 bits RFC 5438 §6.3 recommends.
func NewMessageID() string { return rand.Text() }

// IMDNRequest is what a message asks of its recipient (RFC 5438 §7.1.1):
// the Message-ID that IMDNs will quote and the notifications wanted.
type IMDNRequest struct {
	MessageID string
	Notify    []NotificationRequest
}

// Wants reports whether r asks for notification n.
func (r IMDNRequest) Wants(n NotificationRequest) bool {
	for _, x := range r.Notify {
		if strings.EqualFold(string(x), string(n)) { // ABNF strings are case-insensitive
			return true
		}
	}
	return false
}

// RequestIMDN asks the recipient of m for the notifications listed (RFC
// 5438 §7.1.1): it sets imdn.Message-ID to messageID (a new NewMessageID
// if empty; it must be a Token), imdn.Disposition-Notification to the
// list, declares the imdn namespace, and sets DateTime to now if it is
// zero, since an IMDN quotes it (§7.1.1.2). It returns the Message-ID.
func (m *Message) RequestIMDN(messageID string, notify ...NotificationRequest) string {
	if messageID == "" {
		messageID = NewMessageID()
	}
	vals := make([]string, len(notify))
	for i, n := range notify {
		vals[i] = string(n)
	}
	m.Set(NamespaceIMDN, "Message-ID", messageID)
	m.Set(NamespaceIMDN, "Disposition-Notification", strings.Join(vals, ", "))
	if m.DateTime.IsZero() {
		m.DateTime = time.Now().Truncate(time.Second)
	}
	return messageID
}

// IMDNRequest returns the notifications m asks for: its imdn.Message-ID and
// the values of its imdn.Disposition-Notification headers (RFC 5438 §10;
// parameters are dropped, unknown values kept). ok is false if m has no
// Message-ID or asks for nothing, and always for an IMDN, which must not
// be answered (§7.2.1).
func (m *Message) IMDNRequest() (r IMDNRequest, ok bool) {
	id, _ := m.Get(NamespaceIMDN, "Message-ID")
	r.MessageID = strings.TrimSpace(id)
	for _, v := range m.GetAll(NamespaceIMDN, "Disposition-Notification") {
		for _, req := range strings.Split(v, ",") {
			req, _, _ = strings.Cut(req, ";")
			if req = strings.Trim(req, " "); req != "" {
				r.Notify = append(r.Notify, NotificationRequest(req))
			}
		}
	}
	return r, r.MessageID != "" && len(r.Notify) > 0 && !m.IsNotification()
}

// IsNotification reports whether m carries an IMDN: Content-Type
// message/imdn+xml and Content-Disposition notification (RFC 5438 §9).
func (m *Message) IsNotification() bool {
	disp, _ := m.ContentHeader("Content-Disposition")
	return mediaType(m.ContentType) == ContentTypeIMDN && mediaType(disp) == "notification"
}

// mediaType returns the value before any parameter, lower-cased.
func mediaType(v string) string {
	v, _, _ = strings.Cut(v, ";")
	return strings.ToLower(strings.TrimSpace(v))
}

// Notification parses the IMDN m carries, with the default limits; see
// Parser.Notification.
func (m *Message) Notification() (*IMDN, error) { return Parser{}.Notification(m) }

// Notification parses the IMDN that m carries. It returns an error wrapping
// ErrNotNotification if m is not an IMDN (see Message.IsNotification).
func (p Parser) Notification(m *Message) (*IMDN, error) {
	if !m.IsNotification() {
		return nil, errorf(ErrNotNotification, "Content-Type %q", m.ContentType)
	}
	return p.ParseIMDN(m.Body)
}

// NotificationFor builds the message that answers orig, a received
// message, with an IMDN of the given kind and status (RFC 5438 §7.2.1):
//
//   - From is orig's first To (the recipient answering) and To is orig's
//     From;
//   - a new imdn.Message-ID, and DateTime now;
//   - imdn.IMDN-Route headers copying orig's imdn.IMDN-Record-Route, in
//     order;
//   - Content-Type message/imdn+xml, Content-Disposition notification;
//   - the body an IMDN quoting orig's imdn.Message-ID and DateTime, with
//     recipient-uri the answering URI and original-recipient-uri from
//     imdn.Original-To (the recipient URI when absent), and orig's first
//     Subject.
//
// It refuses (ErrNotRequested) an IMDN that orig did not ask for —
// "delivered" needs positive-delivery, the other delivery statuses
// negative-delivery, display display, processing processing — and any
// IMDN for an IMDN; and it needs orig's imdn.Message-ID and DateTime
// (ErrMissingHeader).
func NotificationFor(orig *Message, kind NotificationKind, status Status) (*Message, error) {
	if orig.IsNotification() {
		return nil, errorf(ErrNotRequested, "no IMDN may answer an IMDN")
	}
	if !validStatus(kind, status) {
		return nil, errorf(ErrInvalidDocument, "status %q in %q", status, kind)
	}
	req, _ := orig.IMDNRequest()
	if req.MessageID == "" {
		return nil, errorf(ErrMissingHeader, "imdn.Message-ID")
	}
	want := map[NotificationKind]NotificationRequest{KindDisplay: Display, KindProcessing: Processing}[kind]
	if kind == KindDelivery {
		want = NegativeDelivery
		if status == StatusDelivered {
			want = PositiveDelivery
		}
	}
	if !req.Wants(want) {
		return nil, errorf(ErrNotRequested, "%s (%s) without %q in Disposition-Notification", kind, status, want)
	}
	if orig.DateTime.IsZero() {
		return nil, errorf(ErrMissingHeader, "DateTime")
	}
	if orig.From.URI == "" || len(orig.To) == 0 {
		return nil, errorf(ErrMissingHeader, "From or To")
	}
	n := IMDN{
		MessageID:    req.MessageID,
		DateTime:     orig.DateTime,
		RecipientURI: orig.To[0].URI,
		Kind:         kind,
		Status:       status,
	}
	n.OriginalRecipientURI = n.RecipientURI
	if ot, ok := orig.Get(NamespaceIMDN, "Original-To"); ok {
		a, err := ParseAddress(ot)
		if err != nil {
			return nil, fmt.Errorf("%w (imdn.Original-To)", err)
		}
		n.OriginalRecipientURI = a.URI
	}
	if len(orig.Subject) > 0 && xmlText(orig.Subject[0].Text) { // one XML cannot hold is left out
		n.Subject, n.SubjectLang = orig.Subject[0].Text, orig.Subject[0].Lang
	}
	body, err := n.Marshal()
	if err != nil {
		return nil, err
	}
	out := &Message{
		From:           orig.To[0],
		To:             []Address{orig.From},
		DateTime:       time.Now().Truncate(time.Second),
		ContentType:    ContentTypeIMDN,
		ContentHeaders: []Field{{"Content-Disposition", "notification"}},
		Body:           body,
	}
	out.Add(NamespaceIMDN, "Message-ID", NewMessageID())
	for _, rr := range orig.GetAll(NamespaceIMDN, "IMDN-Record-Route") {
		out.Add(NamespaceIMDN, "IMDN-Route", rr)
	}
	return out, nil
}
