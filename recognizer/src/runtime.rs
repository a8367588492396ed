//! ONNX Runtime through `ort` with `load-dynamic`: the library is loaded once per
//! process from a path, sessions are built once and shared behind a mutex each
//! (`Session::run` takes `&mut self`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use ort::environment::Environment;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::Session;
use ort::value::TensorRef;

use crate::RecognizerError;

/// ONNX Runtime allows one environment per process; every recognizer shares it.
static ENVIRONMENT: Mutex<Option<(PathBuf, Environment)>> = Mutex::new(None);

/// Loads ONNX Runtime from `library` (once per process) and returns its environment.
/// A missing or unloadable library is an error, never a panic.
pub(crate) fn environment(library: Option<&Path>) -> Result<Environment, RecognizerError> {
    let path = library.ok_or(RecognizerError::OnnxRuntimeNotConfigured)?;
    // checked even when a library is loaded already, so that a wrong setting never
    // passes unnoticed because another recognizer in the process loaded one
    if !path.is_file() {
        return Err(RecognizerError::OnnxRuntimeMissing {
            path: path.to_owned(),
        });
    }
    let mut slot = ENVIRONMENT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((loaded, env)) = slot.as_ref() {
        if loaded != path {
            tracing::warn!(
                loaded = %loaded.display(),
                requested = %path.display(),
                "onnx runtime is loaded once per process; keeping the first library"
            );
        }
        return Ok(env.clone());
    }
    let failed = |reason: String| RecognizerError::OnnxRuntimeLoad {
        path: path.to_owned(),
        reason,
    };
    // ort resolves relative paths against the executable's folder; ours are relative
    // to the working directory
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let env = catch_unwind(AssertUnwindSafe(|| {
        ort::init_from(&absolute)
            .map_err(|e| e.to_string())?
            .with_name("kozomol-recognizer")
            .build()
            .map_err(|e| e.to_string())
    }))
    .map_err(|panic| failed(panic_message(panic)))?
    .map_err(failed)?;
    *slot = Some((path.to_owned(), env.clone()));
    Ok(env)
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "panicked".to_owned())
}

/// One ONNX model with its session.
pub(crate) struct Model {
    session: Mutex<Session>,
    input_name: String,
    /// The file name, for errors.
    pub(crate) name: String,
}

impl Model {
    pub(crate) fn load(
        env: &Environment,
        path: &Path,
        input_name: &str,
        threads: usize,
        cuda: bool,
    ) -> Result<Self, RecognizerError> {
        let bytes = std::fs::read(path).map_err(|source| RecognizerError::ModelFile {
            path: path.to_owned(),
            source,
        })?;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        const CONFIGURING: &str = "configuring a session";
        let mut builder =
            Session::builder(env).map_err(RecognizerError::ort("creating a session"))?;
        builder = builder
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(RecognizerError::ort(CONFIGURING))?;
        // no busy-waiting between runs: the machine has other work
        builder = builder
            .with_intra_op_spinning(false)
            .map_err(RecognizerError::ort(CONFIGURING))?;
        if threads > 0 {
            builder = builder
                .with_intra_threads(threads)
                .map_err(RecognizerError::ort(CONFIGURING))?;
        }
        if cuda {
            register_cuda(&mut builder, &name);
        }
        let session =
            builder
                .commit_from_memory(&bytes)
                .map_err(|e| RecognizerError::ModelMismatch {
                    model: name.clone(),
                    reason: format!("onnx runtime cannot load it: {}", e.message()),
                })?;
        if !session.inputs().iter().any(|i| i.name() == input_name) {
            let names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
            return Err(RecognizerError::ModelMismatch {
                model: name,
                reason: format!("no input named `{input_name}` (it has {names:?})"),
            });
        }
        Ok(Model {
            session: Mutex::new(session),
            input_name: input_name.to_owned(),
            name,
        })
    }

    /// Runs the model on one f32 tensor and hands its first output to `read`.
    pub(crate) fn run<T>(
        &self,
        shape: [usize; 4],
        data: &[f32],
        read: impl FnOnce(&[i64], &[f32]) -> Result<T, RecognizerError>,
    ) -> Result<T, RecognizerError> {
        let input = TensorRef::from_array_view((shape, data))
            .map_err(RecognizerError::ort("making an input tensor"))?;
        let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        let outputs = session
            .run(ort::inputs![self.input_name.as_str() => input])
            .map_err(RecognizerError::ort("running a model"))?;
        let (out_shape, values) =
            outputs[0]
                .try_extract_tensor::<f32>()
                .map_err(|e| RecognizerError::ModelMismatch {
                    model: self.name.clone(),
                    reason: format!("its first output is not an f32 tensor: {}", e.message()),
                })?;
        read(out_shape, values)
    }
}

/// CUDA when asked for and present; otherwise a warning, and the CPU.
#[cfg(feature = "cuda")]
fn register_cuda(builder: &mut SessionBuilder, model: &str) {
    use ort::ep::ExecutionProvider;
    match ort::ep::CUDA::is_available() {
        Ok(true) => match ort::ep::CUDA::default().register(builder) {
            Ok(()) => tracing::info!(model, "running on the CUDA execution provider"),
            Err(e) => tracing::warn!(model, error = %e, "cannot start CUDA; running on the CPU"),
        },
        Ok(false) => tracing::warn!(
            model,
            "this onnx runtime has no CUDA execution provider (install the onnxruntime-gpu build); running on the CPU"
        ),
        Err(e) => tracing::warn!(model, error = %e, "cannot list execution providers; running on the CPU"),
    }
}

#[cfg(not(feature = "cuda"))]
fn register_cuda(_builder: &mut SessionBuilder, model: &str) {
    tracing::warn!(
        model,
        "cuda is configured but kozomol-recognizer was built without its `cuda` feature; running on the CPU"
    );
}
