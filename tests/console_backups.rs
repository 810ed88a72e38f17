//! Backups in the web console, end to end at phone width: a real berth
//! and LXC container, a real Chromium taking a backup from the container's
//! page, downloading and deleting it (after its confirmation page), and
//! uploading an archive and restoring it into a new container from the
//! backups page; axe-core on every page, no browser console errors.

mod browser;
mod common;

use std::time::{Duration, Instant};

use browser::{api_get, serial, Browser, PATIENCE};
use common::{unique_name, Berth};
use serde_json::Value;

/// Polls `GET path` until `done` holds for its body.
async fn api_until(berth: &Berth, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, body) = api_get(&berth.url(path)).await;
        if status == 200 && done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{path} still answers {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Whether the page fits the window's width (no sideways scrolling).
async fn fits(b: &Browser) -> bool {
    b.client
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth;",
            vec![],
        )
        .await
        .unwrap()
        == serde_json::json!(true)
}

fn count(body: &Value) -> usize {
    body["backups"].as_array().map_or(0, Vec::len)
}

#[test]
fn take_download_delete_upload_and_restore_a_backup_from_the_pages() {
    let _serial = serial();
    let berth = Berth::start();
    let name = unique_name("web");
    let id = berth.create(&name, None);
    berth.act(&id, "start");
    let work = tempfile::tempdir().unwrap();
    browser::run(async {
        let b = Browser::start_sized(390, 844).await;
        b.goto(&berth.url(&format!("/containers/{id}"))).await;
        b.find("#backups").await;
        b.assert_accessible("a container's page with no backups")
            .await;
        b.fill("keep_last", "2").await;
        b.click_to_navigate("form[action$='/backups'] button[type=submit]")
            .await;
        let flash = b.text(".flash-success").await;
        assert!(flash.contains("Backup queued"), "{flash}");
        let listed = api_until(&berth, &format!("/v1/backups?container={id}"), |body| {
            count(body) == 1
        })
        .await;
        let backup = listed["backups"][0]["id"].as_str().unwrap().to_owned();
        assert_eq!(berth.lxc_state(&name).as_deref(), Some("RUNNING"));

        b.goto(&berth.url(&format!("/containers/{id}"))).await;
        let row = format!("tr[data-backup='{backup}']");
        let link = b
            .find(&format!("{row} a[download]"))
            .await
            .attr("href")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(link, format!("/v1/backups/{backup}/file"));
        b.assert_accessible("a container's page with a backup")
            .await;
        // The link downloads the archive the record describes.
        let download = reqwest::get(berth.url(&link)).await.unwrap();
        assert_eq!(download.status().as_u16(), 200);
        assert_eq!(
            download.headers()["content-type"].to_str().unwrap(),
            "application/zstd"
        );
        let bytes = download.bytes().await.unwrap().to_vec();
        assert_eq!(
            listed["backups"][0]["size"].as_u64().unwrap(),
            bytes.len() as u64
        );
        let archive = work.path().join("downloaded.tar.zst");
        std::fs::write(&archive, &bytes).unwrap();

        // Delete asks first on a page of its own; nothing is deleted yet.
        b.click_to_navigate(&format!("{row} a[href$='/delete?back=container']"))
            .await;
        assert!(b.text("h1").await.starts_with("Delete this backup"));
        assert_eq!(count(&api_get(&berth.url("/v1/backups")).await.1), 1);
        b.assert_accessible("the backup delete confirmation").await;
        b.click_to_navigate(".confirm button[type=submit]").await;
        assert_eq!(b.current_path().await, format!("/containers/{id}"));
        assert!(b.text(".flash-success").await.contains("Deleted"));
        assert_eq!(count(&api_get(&berth.url("/v1/backups")).await.1), 0);
        let files = std::fs::read_dir(berth.data_dir().join("backups"))
            .unwrap()
            .count();
        assert_eq!(files, 0, "the file is gone with the record");

        // The backups page: in the navigation, upload, restore.
        b.click_to_navigate("nav a[href='/backups']").await;
        b.find("nav a[href='/backups'][aria-current='page']").await;
        b.assert_accessible("the empty backups page").await;
        b.find("input[type=file][name=file]")
            .await
            .send_keys(archive.to_str().unwrap())
            .await
            .unwrap();
        b.click_to_navigate("form[action='/backups'] button[type=submit]")
            .await;
        let flash = b.text(".flash-success").await;
        assert!(flash.contains(&name), "{flash}");
        let uploaded = api_until(&berth, "/v1/backups", |body| count(body) == 1).await;
        let uploaded = uploaded["backups"][0]["id"].as_str().unwrap().to_owned();
        b.assert_accessible("the backups page with a backup").await;
        assert!(fits(&b).await, "the backups page fits a phone");

        b.click_to_navigate(&format!("tr[data-backup='{uploaded}'] a[href$='/restore']"))
            .await;
        assert!(b.text("h1").await.starts_with("Restore this backup"));
        b.assert_accessible("the restore confirmation").await;
        // A name in use is refused on the same page, nothing made.
        b.fill("name", &name).await;
        b.click_to_navigate(".confirm button[type=submit]").await;
        assert!(b.text(".flash-error").await.contains("already exists"));
        b.assert_accessible("the restore confirmation with an error")
            .await;
        let copy = unique_name("copy");
        b.fill("name", &copy).await;
        b.click_to_navigate(".confirm button[type=submit]").await;
        assert!(b.current_path().await.starts_with("/jobs/"));
        b.wait_text("[data-job-field=status]", "done").await;
        let (_, containers) = api_get(&berth.url(&format!("/v1/containers?name={copy}"))).await;
        assert_eq!(containers["containers"].as_array().unwrap().len(), 1);
        assert!(berth
            .lxc_path()
            .join(&copy)
            .join("rootfs/bin/busybox")
            .exists());

        // The dark palette too, on the page with the most on it.
        b.prefer_dark_colour_scheme().await;
        b.goto(&berth.url("/backups")).await;
        b.find(&format!("tr[data-backup='{uploaded}']")).await;
        b.assert_accessible("the backups page in the dark colour scheme")
            .await;

        let errors: Vec<String> = b
            .console_errors()
            .await
            .into_iter()
            // The refused name answers 422 on purpose; Chromium logs that.
            .filter(|line| !line.contains("status of 422"))
            .collect();
        assert!(errors.is_empty(), "browser console errors: {errors:#?}");
        b.close().await;
    });
}
