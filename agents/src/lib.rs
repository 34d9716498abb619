//! AccuRate active agents: Kamailio evapi, FreeSWITCH ESL, Asterisk ARI,
//! OpenSIPS datagram, Diameter (Gy) and RADIUS.
#![forbid(unsafe_code)]
