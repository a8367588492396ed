//! The facts the issuing stages read from a case, whoever recorded it: a camera's
//! signed event, or the report of an officer who saw the violation himself (a speed
//! gun only for speeding, no coordinates where he had none, the officer as the
//! witness).

use kozomol_core::{
    Measurement, MeasuringDevice, OfficerReport, ViolationEvent, ViolationKind, OFFICER_SOURCE,
};
use kozomol_store::CaseRecord;

use crate::resolution::Place;

/// What a case's stored event says about the offence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseFacts {
    pub kind: ViolationKind,
    pub place: Place,
    pub measurement: Measurement,
    /// The camera's measuring device, or the speed gun an officer measured with; none
    /// for an officer's report of anything but speeding.
    pub device: Option<MeasuringDevice>,
    /// The login of the officer who filed the case himself, the witness.
    pub witness: Option<String>,
}

/// Reads the case's stored event; the error says why it does not read.
pub fn case_facts(case: &CaseRecord) -> Result<CaseFacts, String> {
    if case.event.get("source").and_then(|s| s.as_str()) == Some(OFFICER_SOURCE) {
        let report: OfficerReport = serde_json::from_value(case.event.clone())
            .map_err(|e| format!("the stored officer report does not read: {e}"))?;
        return Ok(CaseFacts {
            kind: report.kind,
            place: Place {
                address: report.place.address,
                lat_e6: report.place.lat_e6,
                lon_e6: report.place.lon_e6,
            },
            measurement: report.measurement,
            device: report.device,
            witness: Some(report.officer),
        });
    }
    let event: ViolationEvent = serde_json::from_value(case.event.clone())
        .map_err(|e| format!("the stored event does not read: {e}"))?;
    Ok(CaseFacts {
        kind: event.kind,
        place: Place {
            address: event.site.address,
            lat_e6: Some(event.site.lat_e6),
            lon_e6: Some(event.site.lon_e6),
        },
        measurement: event.measurement,
        device: Some(event.device),
        witness: None,
    })
}
