//! Choosing the device: CPU always works; CUDA needs the `cuda` cargo feature (candle's
//! kernels, built with nvcc) and a GPU at run time.
use candle_core::Device;

/// A device name that is not cpu, cuda or auto.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("device {0:?}: expected cpu, cuda or auto")]
pub struct UnknownDevice(pub String);

/// The device for `name` (cpu, cuda, auto), with a note when the choice fell back.
pub fn choose(name: &str) -> Result<(Device, Option<String>), UnknownDevice> {
    match name {
        "cpu" => Ok((Device::Cpu, None)),
        "cuda" | "auto" => {
            if !cfg!(feature = "cuda") {
                let note = "this arbor was built without CUDA (build with `--features cuda` \
                            on a machine with nvcc); running on CPU";
                return Ok((Device::Cpu, Some(note.into())));
            }
            match Device::new_cuda(0) {
                Ok(d) => Ok((d, None)),
                Err(e) => Ok((
                    Device::Cpu,
                    Some(format!("no usable CUDA device ({e}); running on CPU")),
                )),
            }
        }
        other => Err(UnknownDevice(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_chosen_and_cuda_falls_back_with_a_message_here() {
        assert!(matches!(choose("cpu"), Ok((Device::Cpu, None))));
        if !cfg!(feature = "cuda") {
            let (d, note) = choose("cuda").unwrap();
            assert!(matches!(d, Device::Cpu));
            assert!(note.unwrap().contains("--features cuda"));
        }
        assert!(choose("tpu").unwrap_err().to_string().contains("tpu"));
    }
}
