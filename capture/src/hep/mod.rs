//! HEP (Homer Encapsulation Protocol) v1, v2 and v3: decode, encode, and
//! stream framing for HEP over TCP.
