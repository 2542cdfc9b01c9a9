//! The service layer, end to end over real sockets: HTTP API (authorisation matrix, OpenAPI,
//! problem details, sessions and commands, edge sync, WebSocket events), the command
//! dispatcher and the MQTT side (embedded broker; Mosquitto when `VOLTLINE_TEST_MQTT` is set).
//! Servers listen on 127.0.0.1:0; every wait is bounded.

mod service {
    mod bills;
    mod discharges;
    mod edge;
    pub mod harness;
    mod matrix;
    mod mqtt;
    mod sessions;
}
