//! The reply that tells the page a request failed, for a worker that cannot run it at all (the
//! training worker could not start): every request the page waits on gets its answer.

use afinar_vocabulary::{Backend, CPU_ADAPTER};

use crate::{Reply, Request};

impl Request {
    /// The reply that answers this request with `message` as its failure; `None` for a request
    /// the page waits on no answer for (it changes the worker's state only).
    pub fn failure(&self, message: &str) -> Option<Reply> {
        let message = message.to_string();
        Some(match self {
            Request::Classify { id, .. } => Reply::Classified {
                id: *id,
                result: Err(message),
            },
            Request::ClassifyFrame { id, .. } => Reply::FrameClassified {
                id: *id,
                result: Err(message),
            },
            Request::Prepare { id, rows, .. } => Reply::Prepared {
                id: *id,
                rows: *rows,
                result: Err(message),
            },
            Request::Train(_) => Reply::Trained(Err(message)),
            Request::ExportModel => Reply::ModelExported(Err(message)),
            Request::Publish { .. } => Reply::Published(Err(message)),
            Request::CheckLabels => Reply::LabelsChecked(Err(message)),
            Request::AddProjectPhotos(_) => Reply::ProjectProgress(Err(message)),
            Request::FinishProject => Reply::ProjectBytes(Err(message)),
            Request::OpenProject => Reply::ProjectOpened(Err(message)),
            Request::ProjectPhotos { .. } => Reply::ProjectPhotos(Err(message)),
            Request::UseBackend(Backend::WebGpu) | Request::UseBestBackend => Reply::BackendReady {
                backend: Backend::Cpu,
                adapter: CPU_ADAPTER.into(),
                fallback: Some(message),
            },
            Request::LoadDefaultModel { .. } => Reply::ModelFailed(message),
            Request::LoadModelFile { name, .. } => Reply::ModelRefused {
                name: name.clone(),
                message,
            },
            Request::UseHead { .. } => Reply::HeadRefused(message),
            Request::UseBackend(Backend::Cpu)
            | Request::UseWorkers(_)
            | Request::CancelTraining
            | Request::ForgetHead
            | Request::SaveProject(_)
            | Request::OpenProjectPart { .. }
            | Request::CloseProject
            | Request::FollowStage(_)
            | Request::ReportMemory
            | Request::TrainRows(_)
            | Request::StageRows(_) => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use afinar_vocabulary::RowsNeeded;

    #[test]
    fn a_request_the_page_waits_on_fails_with_its_own_reply() {
        let rows = RowsNeeded {
            unfreeze: Some(2),
            views: 3,
            seed: 7,
        };
        let prepare = Request::Prepare {
            id: 4,
            bytes: vec![1, 2],
            rows,
        };
        assert_eq!(
            prepare.failure("offline"),
            Some(Reply::Prepared {
                id: 4,
                rows,
                result: Err("offline".into())
            })
        );
        assert_eq!(
            Request::ExportModel.failure("offline"),
            Some(Reply::ModelExported(Err("offline".into())))
        );
        assert!(matches!(
            Request::UseBackend(Backend::WebGpu).failure("offline"),
            Some(Reply::BackendReady {
                backend: Backend::Cpu,
                fallback: Some(_),
                ..
            })
        ));
        assert_eq!(Request::CancelTraining.failure("offline"), None);
        assert_eq!(Request::CloseProject.failure("offline"), None);
    }
}
