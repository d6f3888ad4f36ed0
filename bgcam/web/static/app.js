// BgCam control panel. Plain script, no build step, no third-party code.
// Every change is a POST to /api/command (or /api/background) carrying the X-BgCam-CSRF header;
// the daemon replies once it has applied the change between frames.
"use strict";

(function () {
  const POLL_MS = 1000;
  const HOLD_MS = 1500; // keep a control as the user set it for this long after their input

  const $ = (id) => document.getElementById(id);
  const state = {
    csrf: null,
    maxUpload: 10 * 1024 * 1024,
    touched: {}, // control name -> time of the user's last input
    blurSending: false,
    blurPending: null,
    paused: false,
    autoframe: false,
    light: false,
  };

  const LABELS = {
    gaussian: "Gaussian",
    box: "Box (fastest)",
    median: "Median",
    bilateral: "Bilateral (edge-preserving)",
    lens: "Lens (disc bokeh)",
    mediapipe: "mediapipe",
    onnx: "onnx",
    hsv: "hsv",
  };

  // ---- talking to the daemon -------------------------------------------------------------
  async function request(path, options) {
    const opts = Object.assign({ credentials: "same-origin", cache: "no-store" }, options || {});
    opts.headers = Object.assign({}, opts.headers || {});
    if (opts.method === "POST") {
      opts.headers["X-BgCam-CSRF"] = state.csrf || "";
    }
    let resp;
    try {
      resp = await fetch(path, opts);
    } catch (err) {
      throw new Error("the daemon does not answer (is BgCam still running?)");
    }
    const text = await resp.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch (err) {
      body = { ok: false, error: text.trim() || resp.statusText };
    }
    if (!resp.ok || body.ok === false) {
      if (resp.status === 401) {
        throw new Error("not authorised: open the panel again with `bgcam open`");
      }
      throw new Error(body.error || "request failed (" + resp.status + ")");
    }
    return body;
  }

  function say(text) {
    $("error").textContent = "";
    $("message").textContent = text;
  }

  function fail(err) {
    $("message").textContent = "";
    $("error").textContent = String(err && err.message ? err.message : err);
  }

  async function send(name, arg, done) {
    try {
      const body = await request("/api/command", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name: name, arg: arg === undefined ? null : arg }),
      });
      render(body, true);
      if (done) say(done);
      return true;
    } catch (err) {
      fail(err);
      return false;
    }
  }

  // ---- showing the state -----------------------------------------------------------------
  function setText(id, text) {
    const el = $(id);
    if (el.textContent !== text) el.textContent = text; // untouched text is not re-announced
  }

  function num(value, digits) {
    return typeof value === "number" && isFinite(value) ? value.toFixed(digits) : null;
  }

  function held(name) {
    const t = state.touched[name];
    return t !== undefined && Date.now() - t < HOLD_MS;
  }

  function render(body, force) {
    const s = body.settings || {};
    const st = body.stats || {};
    if (force || !held("mode")) {
      document.querySelectorAll('input[name="mode"]').forEach((r) => {
        r.checked = r.value === s.mode;
      });
    }
    if ((force && !state.blurSending) || (!held("blur") && !state.blurSending)) {
      if (typeof s.blur === "number") {
        $("blur").value = String(s.blur);
        $("blur-value").textContent = String(s.blur);
      }
    }
    if (force || !held("blur_type")) $("blur-type").value = s.blur_type || "";
    if (force || !held("segmenter")) $("segmenter").value = s.segmenter || "";
    if (force || !held("roi")) $("roi").checked = !!s.roi;
    if ((force || !held("roi_margin")) && typeof s.roi_margin === "number") {
      $("roi-margin").value = String(s.roi_margin);
    }
    if ((force || !held("roi_full_every")) && typeof s.roi_full_every === "number") {
      $("roi-full-every").value = String(s.roi_full_every);
    }
    if ((force || !held("max_skip")) && typeof s.max_skip === "number") {
      $("max-skip").value = String(s.max_skip);
    }
    state.paused = !!s.paused;
    $("pause").setAttribute("aria-pressed", state.paused ? "true" : "false");
    state.autoframe = !!s.autoframe;
    state.light = s.light === "auto";
    $("autoframe").setAttribute("aria-pressed", state.autoframe ? "true" : "false");
    $("light").setAttribute("aria-pressed", state.light ? "true" : "false");
    const zoom = st.autoframe ? num(st.autoframe.zoom, 2) : null;
    const gain = st.light ? num(st.light.gain, 2) : null;
    setText(
      "stat-studio",
      (zoom === null ? "—" : zoom + "x") + " / " + (gain === null ? "—" : gain + "x")
    );

    let stateText = st.state ? String(st.state) : "running";
    if (state.paused) stateText = "paused";
    setText("stat-state", stateText + (s.mode ? ", mode " + s.mode : ""));
    const fps = num(st.fps_out, 0);
    setText("stat-fps", fps === null ? "—" : fps + " frames per second");
    const p50 = num(st.latency_ms_p50, 0);
    const p99 = num(st.latency_ms_p99, 0);
    setText("stat-latency", p50 === null ? "—" : p50 + " ms / " + (p99 === null ? "—" : p99) + " ms");
    const cpu = num(st.cpu_percent, 0);
    setText("stat-cpu", cpu === null ? "—" : cpu + " % of one core");
    setText("stat-frames", st.frames_out === undefined ? "—" : String(st.frames_out));
    const rep = st.frames_repeated === undefined ? "—" : String(st.frames_repeated);
    const drop = st.frames_dropped === undefined ? "—" : String(st.frames_dropped);
    setText("stat-repeat-drop", rep + " / " + drop);
  }

  async function poll() {
    try {
      const body = await request("/api/status");
      render(body, false);
      setText("connection", "Connected");
      $("connection").classList.remove("bad");
    } catch (err) {
      setText("connection", "Not connected: " + err.message);
      $("connection").classList.add("bad");
    }
    window.setTimeout(poll, POLL_MS);
  }

  // ---- controls ---------------------------------------------------------------------------
  function fillSelect(id, values) {
    const select = $(id);
    select.textContent = "";
    values.forEach((v) => {
      const opt = document.createElement("option");
      opt.value = v;
      opt.textContent = LABELS[v] || v;
      select.appendChild(opt);
    });
  }

  // Send the newest slider value; while one request is on its way, keep only the latest.
  async function sendBlur(value) {
    state.blurPending = value;
    if (state.blurSending) return;
    state.blurSending = true;
    try {
      while (state.blurPending !== null) {
        const v = state.blurPending;
        state.blurPending = null;
        await send("blur", v, "Blur strength " + v);
      }
    } finally {
      state.blurSending = false;
      state.touched.blur = Date.now();
    }
  }

  function wireControls() {
    document.querySelectorAll('input[name="mode"]').forEach((radio) => {
      radio.addEventListener("change", () => {
        if (!radio.checked) return;
        state.touched.mode = Date.now();
        send("mode", radio.value, "Mode " + radio.value);
      });
    });

    const blur = $("blur");
    blur.addEventListener("input", () => {
      state.touched.blur = Date.now();
      $("blur-value").textContent = blur.value;
      sendBlur(Number(blur.value));
    });
    blur.addEventListener("change", () => {
      state.touched.blur = Date.now();
      sendBlur(Number(blur.value));
    });

    $("blur-type").addEventListener("change", (ev) => {
      state.touched.blur_type = Date.now();
      send("blur_type", ev.target.value, "Blur type " + ev.target.value);
    });

    $("segmenter").addEventListener("change", (ev) => {
      state.touched.segmenter = Date.now();
      say("Switching the person finder to " + ev.target.value + "…");
      send("segmenter", ev.target.value, "Person finder " + ev.target.value);
    });

    $("roi").addEventListener("change", (ev) => {
      state.touched.roi = Date.now();
      const on = ev.target.checked ? "on" : "off";
      send("roi", on, "Person tracking " + on);
    });
    [["roi-margin", "roi_margin", "Room around the person "],
     ["roi-full-every", "roi_full_every", "Newcomer search every "],
     ["max-skip", "max_skip", "Frames without the model at most "]].forEach(([id, name, text]) => {
      $(id).addEventListener("change", (ev) => {
        state.touched[name] = Date.now();
        send(name, ev.target.value, text + ev.target.value);
      });
    });

    $("pause").addEventListener("click", () => {
      const pause = !state.paused;
      send(pause ? "pause" : "resume", null, pause ? "Video paused" : "Video resumed");
    });

    $("autoframe").addEventListener("click", () => {
      const on = !state.autoframe;
      send("autoframe", on ? "on" : "off", on ? "Auto-framing on" : "Auto-framing off");
    });

    $("light").addEventListener("click", () => {
      const on = !state.light;
      send("light", on ? "auto" : "off", on ? "Low-light correction on" : "Low-light correction off");
    });

    $("save").addEventListener("click", async () => {
      try {
        const body = await request("/api/command", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ name: "save", arg: null }),
        });
        say("Settings saved to " + ((body.stats && body.stats.saved) || "the config file"));
      } catch (err) {
        fail(err);
      }
    });
    $("reload").addEventListener("click", () => send("reload", null, "Configuration reloaded"));

    $("upload-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const file = $("background-file").files[0];
      if (!file) {
        fail("choose an image file first");
        return;
      }
      if (file.size > state.maxUpload) {
        fail(file.name + " is larger than " + $("upload-limit").textContent + ": not uploaded");
        return;
      }
      const data = new FormData();
      data.append("image", file, file.name);
      $("upload-button").disabled = true;
      say("Uploading " + file.name + "…");
      try {
        const body = await request("/api/background", { method: "POST", body: data });
        render(body, true);
        say("Background set to " + file.name);
      } catch (err) {
        fail(err);
      } finally {
        $("upload-button").disabled = false;
      }
    });
  }

  // ---- preview ----------------------------------------------------------------------------
  // The stream runs only while the box is ticked and the page is visible: the daemon encodes
  // JPEG frames only for someone watching.
  function updatePreview() {
    const img = $("preview");
    const want = $("show-preview").checked && document.visibilityState === "visible";
    $("preview-off").hidden = want;
    if (want && !img.getAttribute("src")) {
      img.src = "/preview.mjpg?t=" + Date.now();
    } else if (!want && img.getAttribute("src")) {
      img.removeAttribute("src"); // the browser drops the stream
    }
  }

  function wirePreview() {
    const img = $("preview");
    img.addEventListener("error", () => {
      if (!img.getAttribute("src")) return;
      img.removeAttribute("src");
      window.setTimeout(updatePreview, 2000); // the daemon restarted or is busy: try again
    });
    $("show-preview").addEventListener("change", updatePreview);
    document.addEventListener("visibilitychange", updatePreview);
    updatePreview();
  }

  // ---- start ------------------------------------------------------------------------------
  async function start() {
    wireControls();
    try {
      const session = await request("/api/session");
      state.csrf = session.csrf;
      state.maxUpload = session.max_upload_bytes;
      $("upload-limit").textContent = Math.round(session.max_upload_bytes / 1048576) + " MB";
      fillSelect("blur-type", session.choices.blur_type);
      fillSelect("segmenter", session.choices.segmenter);
    } catch (err) {
      setText("connection", "Not connected: " + err.message);
      $("connection").classList.add("bad");
      return;
    }
    wirePreview();
    poll();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
