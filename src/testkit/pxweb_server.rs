//! A PxWeb test server (API v1 and PxWebApi 2.0) on loopback.
