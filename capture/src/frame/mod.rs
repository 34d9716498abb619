//! The capture-frame path: link layer, VLAN, IPv4/IPv6, IP fragment
//! reassembly, UDP, TCP stream reassembly, and HEP found inside captures.
