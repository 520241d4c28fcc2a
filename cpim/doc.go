// Package cpim builds and parses the chat payloads that SIP SIMPLE clients
// (Blink, RCS) carry inside MSRP SEND bodies:
//
//   - message/cpim (RFC 3862), the envelope that names sender, recipients
//     and time of an instant message and carries extension headers such
//     as IMDN's. Message, Parse, Marshal and Wrap are in cpim.go and
//     parse.go; the "Display Name" <uri> values of From, To and cc are
//     the Address type (address.go), which also holds the RFC 3862 §2.3
//     escape mechanism.
//   - application/im-iscomposing+xml (RFC 3994), the "is typing"
//     indication: IsComposing and ParseIsComposing (iscomposing.go), and
//     the timer rules of RFC 3994 §3.2 and §3.3 in Composer (the sending
//     side) and Watcher (the receiving side) (composer.go).
//   - message/imdn+xml (RFC 5438), delivery, display and processing
//     notifications: IMDN and ParseIMDN, plus the CPIM side of the
//     mechanism: Message.RequestIMDN and Message.IMDNRequest for the
//     imdn.Message-ID and imdn.Disposition-Notification headers, and
//     NotificationFor, which builds the CPIM message that answers a
//     received one (imdn.go).
//
// Everything that reads untrusted input is bounded: Parser holds the limits
// (header block size and count for CPIM; document size and element depth
// for XML). XML documents are decoded with encoding/xml after a token scan
// that refuses DOCTYPE and ENTITY declarations (xml.go), so entity
// expansion attacks are rejected before any structure is built.
//
// Errors wrap exported sentinels (ErrMalformed, ErrMissingHeader,
// ErrDuplicateHeader, ErrBadDateTime, ...) with detail; test them with
// errors.Is.
//
// This package does no I/O and does not depend on the msrp package: a
// received msrp message body whose Content-Type is message/cpim goes to
// Parse, and Marshal's output goes to Send with ContentTypeCPIM.
package cpim
