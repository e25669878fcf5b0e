//! Redraws the view in place on a terminal until Ctrl-C (or SIGTERM/SIGHUP), with the cursor
//! hidden meanwhile and shown again however the loop ends.

use super::frame::Style;
use super::{Watch, REFRESH};
use std::io::{self, Write};
use std::sync::mpsc;
use std::time::Instant;

const HIDE_CURSOR: &str = "\x1b[?25l";
const SHOW_CURSOR: &str = "\x1b[?25h";
const CLEAR_SCREEN: &str = "\x1b[2J";
const HOME: &str = "\x1b[H";
const CLEAR_TO_LINE_END: &str = "\x1b[K";
const CLEAR_TO_SCREEN_END: &str = "\x1b[J";

/// Runs the live view on stdout, which must be a terminal, until a termination signal.
pub fn run(watch: &mut Watch) -> Result<(), String> {
    let (stop_tx, stop) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    })
    .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))?;
    let mut screen = Screen::enter().map_err(|e| format!("cannot write to the terminal: {e}"))?;
    let mut next = Instant::now();
    loop {
        let frame = watch.frame(Style::Ansi);
        screen
            .draw(&frame)
            .map_err(|e| format!("cannot write to the terminal: {e}"))?;
        // Frames keep to the REFRESH grid; after a slow poll, the next one starts at once.
        next = (next + REFRESH).max(Instant::now());
        match stop.recv_timeout(next.saturating_duration_since(Instant::now())) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
}

/// The terminal while the view runs; dropping it shows the cursor again.
struct Screen {
    out: io::Stdout,
}

impl Screen {
    fn enter() -> io::Result<Screen> {
        let mut out = io::stdout();
        write!(out, "{HIDE_CURSOR}{CLEAR_SCREEN}")?;
        out.flush()?;
        Ok(Screen { out })
    }

    /// Overwrites the previous frame line by line (no blank screen in between, so no
    /// flicker), then clears what the previous frame had below this one.
    fn draw(&mut self, frame: &str) -> io::Result<()> {
        let mut buf = String::with_capacity(frame.len() + 256);
        buf.push_str(HOME);
        for line in frame.lines() {
            buf.push_str(line);
            buf.push_str(CLEAR_TO_LINE_END);
            buf.push('\n');
        }
        buf.push_str(CLEAR_TO_SCREEN_END);
        let mut out = self.out.lock();
        out.write_all(buf.as_bytes())?;
        out.flush()
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = write!(self.out, "{SHOW_CURSOR}");
        let _ = self.out.flush();
    }
}
