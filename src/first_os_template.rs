//! The first OS template of a new berth: when the template directory holds
//! none, `berth serve` builds `template1` (the name the seed's examples
//! use) from Debian's busybox-static, with the same script the README and
//! the tests use, so that a newcomer's first create works as written.

use std::path::Path;

use tokio::process::Command;

use crate::os_templates::OsTemplateStore;

/// The template the seed's examples ask for.
const NAME: &str = "template1";
/// packaging/make-busybox-template.sh, carried in the binary so that a
/// checkout and an installed berth build the very same template.
const SCRIPT: &str = include_str!("../packaging/make-busybox-template.sh");
/// Where the script takes busybox from (its `BUSYBOX` default).
const BUSYBOX: &str = "/bin/busybox";
/// Where an operator learns about templates.
const HOW_TO: &str = "see \"Getting an OS template\" in berth's README, \
                      or run `berth template import FILE`";

/// Builds `template1` into `store` if the store holds no template at all.
/// Never fails berth's start: without busybox-static, or if the build
/// fails, it logs how to get a template and berth serves without one.
pub async fn provide(store: &OsTemplateStore) {
    let dir = store.dir().display();
    match store.files() {
        Ok(files) if files.is_empty() => {}
        Ok(_) => return,
        Err(error) => {
            log::warn!("cannot read the template directory {dir}: {error}");
            return;
        }
    }
    if !Path::new(BUSYBOX).exists() {
        log::info!(
            "the template directory {dir} holds no template; {HOW_TO} \
             (with busybox-static installed, berth builds '{NAME}' at start)"
        );
        return;
    }
    // Built under a hidden staging name, then moved in by the store as
    // uploads are: a half-built archive is never listed.
    let staging = store.staging_path();
    let built = Command::new("sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg("make-busybox-template.sh")
        .arg(&staging)
        .output()
        .await;
    let failure = match built {
        Ok(output) if output.status.success() => {
            match store.install(&staging, &format!("{NAME}.tar.gz"), false) {
                Ok(_) => {
                    log::info!(
                        "the template directory {dir} held no template: built template \
                         '{NAME}' from busybox-static; for others, {HOW_TO}"
                    );
                    return;
                }
                Err(error) => error.to_string(),
            }
        }
        Ok(output) => String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        Err(error) => format!("cannot run sh: {error}"),
    };
    let _ = std::fs::remove_file(&staging);
    log::warn!(
        "the template directory {dir} holds no template, and building '{NAME}' from \
         busybox-static failed: {failure}; {HOW_TO}"
    );
}
