use std::path::PathBuf;

/// Where the library comes from, repeated in every error about it.
const HOW_TO_GET: &str = "point the `onnxruntime` setting or ORT_DYLIB_PATH at libonnxruntime.so; \
     `source scripts/lib.sh && ensure_onnxruntime` fetches it from the PyPI wheel";

#[derive(Debug, thiserror::Error)]
pub enum RecognizerError {
    #[error("no onnx runtime library configured: {HOW_TO_GET}")]
    OnnxRuntimeNotConfigured,
    #[error("onnx runtime library `{path}` does not exist: {HOW_TO_GET}")]
    OnnxRuntimeMissing { path: PathBuf },
    #[error("onnx runtime library `{path}` failed to load ({reason}): {HOW_TO_GET}")]
    OnnxRuntimeLoad { path: PathBuf, reason: String },
    #[error("cannot read `{path}`: {source}")]
    ModelFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid model manifest `{path}`: {reason}")]
    Manifest { path: PathBuf, reason: String },
    /// The model runs but its inputs or outputs do not match the manifest.
    #[error("model `{model}`: {reason}")]
    ModelMismatch { model: String, reason: String },
    #[error("onnx runtime failed while {stage}: {message}")]
    Inference {
        stage: &'static str,
        message: String,
    },
    #[error("cannot decode the frame as JPEG: {0}")]
    Decode(String),
    #[error("image of {width}x{height} pixels is too small to read")]
    ImageTooSmall { width: u32, height: u32 },
}

impl RecognizerError {
    /// An `ort` error, with what we were doing when it happened.
    pub(crate) fn ort<R>(stage: &'static str) -> impl FnOnce(ort::Error<R>) -> Self {
        move |e| RecognizerError::Inference {
            stage,
            message: e.message().to_owned(),
        }
    }
}
