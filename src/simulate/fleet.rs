//! The fleet a simulation drives: charge points with their keys and drivers with their
//! credentials and RFID tags. Read from a JSON file, or provisioned through the operator API.

use serde::{Deserialize, Serialize};

/// A simulated charge point.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FleetCharger {
    /// The charge point id (`/ocpp/{id}`).
    pub id: String,
    /// Its key (HTTP Basic password), as returned once at registration or rotation.
    pub key: String,
    /// How many connectors it has (numbered from 1).
    pub connectors: u32,
    /// Where it stands; drivers have habits per place.
    pub location_id: i64,
}

/// A simulated driver.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FleetDriver {
    pub email: String,
    pub password: String,
    /// The RFID card the driver taps (registered on the account).
    pub id_tag: String,
}

/// A fleet file (`laddkoll simulate --fleet FILE`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Fleet {
    pub chargers: Vec<FleetCharger>,
    pub drivers: Vec<FleetDriver>,
}

impl Fleet {
    /// Reads a fleet file.
    pub fn load(path: &std::path::Path) -> anyhow::Result<Fleet> {
        use anyhow::Context;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the fleet file {}", path.display()))?;
        let fleet: Fleet = serde_json::from_str(&text)
            .with_context(|| format!("parsing the fleet file {}", path.display()))?;
        if fleet.chargers.is_empty() {
            anyhow::bail!("the fleet file {} lists no chargers", path.display());
        }
        Ok(fleet)
    }

    /// Writes a fleet file (it holds keys and passwords: keep it private).
    pub fn save(&self, path: &std::path::Path) -> anyhow::Result<()> {
        use anyhow::Context;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))
    }
}
