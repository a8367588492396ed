//! kozomol-server: the `kozomol` binary's parts as a library.
//!
//! It owns configuration, wiring of the parts into one process (`serve`) or one part
//! per process (`run PART`), the embedded MQTT broker, the HTTP API with its access
//! control, metrics and OpenAPI description, and the camera simulator command.
