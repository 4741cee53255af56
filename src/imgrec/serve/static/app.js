// imgrec web page: pick a model, drop images, see top-k bars; or pick a face collection (imgrec serve
// --faces) and see each face's box, landmarks and name. Plain JS, no framework.
"use strict";

(function () {
  const AUTH = document.body.dataset.auth === "true";
  const CHUNK = 16; // images per request
  const $ = (id) => document.getElementById(id);
  const els = {
    model: $("model"), topK: $("top-k"), key: $("api-key"), keyControl: $("key-control"),
    info: $("model-info"), drop: $("dropzone"), input: $("file-input"), status: $("status"),
    results: $("results"),
  };
  const models = new Map();
  const FACES = "faces:"; // option values of face collections: "faces:<collection>"

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function headers() {
    const key = els.key.value.trim();
    return AUTH && key ? { Authorization: "Bearer " + key } : {};
  }

  function setStatus(text, isError) {
    els.status.textContent = text;
    els.status.classList.toggle("error", Boolean(isError));
  }

  async function api(path, options) {
    const opts = Object.assign({}, options || {});
    opts.headers = Object.assign({}, opts.headers || {}, headers());
    const response = await fetch(path, opts);
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) {
      const err = (body && body.error) || { code: "http_" + response.status, message: response.statusText };
      const error = new Error(err.message);
      error.code = err.code;
      error.status = response.status;
      throw error;
    }
    return body;
  }

  // Face collections are served only with `imgrec serve --faces`: a 404 here means none.
  async function loadCollections() {
    try {
      const body = await api("/v1/collections");
      return body.collections.map((c) => Object.assign(c, { served: c.name === body.served }));
    } catch (err) {
      if (err.status === 404) return [];
      throw err;
    }
  }

  async function loadModels() {
    try {
      const body = await api("/v1/models");
      const collections = await loadCollections();
      els.model.replaceChildren();
      models.clear();
      for (const m of body.models) {
        models.set(m.name, m);
        const opt = el("option", "", m.name + " · " + m.architecture);
        opt.value = m.name;
        els.model.append(opt);
      }
      for (const c of collections) {
        models.set(FACES + c.name, c);
        const opt = el("option", "", "faces · " + c.name);
        opt.value = FACES + c.name;
        opt.selected = c.served && !body.models.length;
        els.model.append(opt);
      }
      const none = !body.models.length && !collections.length;
      setStatus(none ? "No model is served." : "", none);
      await showModel();
    } catch (err) {
      if (err.status === 401 || err.status === 403) {
        setStatus(err.status === 401 ? "Enter your API key to start." : "That API key is not accepted.", true);
        els.key.focus();
      } else {
        setStatus("Cannot list models: " + err.message, true);
      }
    }
  }

  async function showModel() {
    const name = els.model.value;
    els.info.replaceChildren();
    if (!name) return;
    if (name.startsWith(FACES)) {
      const c = models.get(name);
      els.info.append(el("b", "", "face collection " + c.name), " · " + c.embedder + " (" + c.dim + "-d) · ");
      els.info.append(c.faces + " faces · threshold " + c.threshold);
      return;
    }
    try {
      const d = await api("/v1/models/" + encodeURIComponent(name));
      els.info.append(el("b", "", d.architecture), " · " + d.family + " · " + d.image_size + "px · ");
      els.info.append(d.num_classes + " classes: ");
      for (const c of d.classes.slice(0, 12)) els.info.append(el("span", "chip", c));
      if (d.classes.length > 12) els.info.append("…");
      const test = d.metrics && (d.metrics.test || d.metrics.val);
      if (test && typeof test.accuracy === "number") {
        els.info.append(" · accuracy " + (100 * test.accuracy).toFixed(1) + "%");
      }
    } catch (err) {
      els.info.textContent = err.message;
    }
  }

  function makeCard(file) {
    const card = el("article", "card");
    const imgBox = el("div", "card-img");
    const frame = el("div", "img-frame");
    const img = el("img");
    img.alt = file.name;
    img.src = URL.createObjectURL(file);
    img.onload = () => URL.revokeObjectURL(img.src);
    frame.append(img);
    imgBox.append(frame);
    const body = el("div", "card-body");
    const head = el("div", "card-head");
    const label = el("span", "label pending", "predicting…");
    const score = el("span", "score");
    head.append(label, score);
    const bars = el("ul", "bars");
    const meta = el("div", "meta");
    body.append(head, el("div", "filename", file.name), bars, meta);
    card.append(imgBox, body);
    return { card, label, score, bars, meta, frame };
  }

  // A detection model answers boxes in the original image's pixels: draw them over the image
  // as percentages of its size, so they stay in place at any displayed size.
  function fillDetections(view, result, latency) {
    const [w, h] = result.image_size;
    const found = result.detections || result.instances;
    view.label.textContent = found.length + " object" + (found.length === 1 ? "" : "s");
    view.label.classList.remove("pending");
    view.score.textContent = found.length ? "best " + (100 * found[0].score).toFixed(0) + "%" : "";
    view.bars.replaceChildren();
    view.frame.querySelectorAll(".box").forEach((b) => b.remove());
    found.forEach((d, k) => {
      const [x1, y1, x2, y2] = d.box;
      const box = el("div", "box c" + (k % 6));
      box.style.left = (100 * x1 / w) + "%";
      box.style.top = (100 * y1 / h) + "%";
      box.style.width = (100 * (x2 - x1) / w) + "%";
      box.style.height = (100 * (y2 - y1) / h) + "%";
      box.append(el("span", "box-label", d.label + " " + (100 * d.score).toFixed(0) + "%"));
      view.frame.append(box);
      if (k < 8) {
        const row = el("li", "bar-row det-row");
        row.append(el("span", "bar-label", d.label), el("span", "bar-value", (100 * d.score).toFixed(1) + "%"));
        view.bars.append(row);
      }
    });
    view.meta.textContent = latency;
  }

  // A face search answers every face: a box per face named after its best match ("unknown"
  // under the collection's threshold) and its 5 landmarks as dots, in the image's pixels.
  function fillFaces(view, result, latency) {
    const [w, h] = result.image_size;
    const found = result.faces;
    const known = found.filter((f) => f.label !== "unknown").length;
    view.label.textContent = found.length ? known + " of " + found.length + " known" : "no face";
    view.label.classList.remove("pending");
    view.score.textContent = "";
    view.bars.replaceChildren();
    view.frame.querySelectorAll(".box, .dot").forEach((b) => b.remove());
    found.forEach((f, k) => {
      const [x1, y1, x2, y2] = f.box;
      const box = el("div", "box c" + (k % 6) + (f.label === "unknown" ? " unknown" : ""));
      box.style.left = (100 * x1 / w) + "%";
      box.style.top = (100 * y1 / h) + "%";
      box.style.width = (100 * (x2 - x1) / w) + "%";
      box.style.height = (100 * (y2 - y1) / h) + "%";
      const sim = f.similarity === null ? "" : " " + f.similarity.toFixed(2);
      box.append(el("span", "box-label", f.label + sim));
      view.frame.append(box);
      (f.landmarks || []).forEach(([x, y], p) => {
        const dot = el("div", "dot p" + p);
        dot.style.left = (100 * x / w) + "%";
        dot.style.top = (100 * y / h) + "%";
        view.frame.append(dot);
      });
      const row = el("li", "bar-row det-row face-row");
      const best = f.matches.length ? f.matches[0].person + " " + f.matches[0].similarity.toFixed(3) : "empty collection";
      row.append(el("span", "bar-label", f.label), el("span", "bar-value", f.label === "unknown" ? "closest: " + best : sim));
      view.bars.append(row);
    });
    view.meta.textContent = latency;
  }

  async function searchFaces(files, collection) {
    const views = files.map(makeCard);
    els.results.prepend(...views.map((v) => v.card));
    setStatus("Looking for faces in " + files.length + " image" + (files.length > 1 ? "s" : "") + "…");
    for (let i = 0; i < files.length; i++) {
      const form = new FormData();
      form.append("file", files[i], files[i].name);
      const t0 = performance.now();
      try {
        const url = "/v1/collections/" + encodeURIComponent(collection) + "/search?top_k=" + els.topK.value;
        const body = await api(url, { method: "POST", body: form });
        const rtt = performance.now() - t0;
        fillFaces(views[i], body, "server " + body.latency_ms.toFixed(1) + " ms · round trip " + rtt.toFixed(0) + " ms");
      } catch (err) {
        failCard(views[i], { code: err.code || "error", message: err.message });
      }
    }
    setStatus("Done: " + files.length + " image" + (files.length > 1 ? "s" : "") + " against " + collection + ".");
  }

  // A segmentation model answers the index mask as a PNG (masks=png; palette colours, class 0 =
  // background in black): painted on a canvas over the image, background made transparent.
  function fillSegments(view, result, latency) {
    const [w, h] = result.image_size;
    const found = result.segments;
    view.label.textContent = found.length ? found.map((s) => s.label).slice(0, 3).join(", ") : "nothing found";
    view.label.classList.remove("pending");
    view.score.textContent = "";
    view.bars.replaceChildren();
    found.slice(0, 8).forEach((s) => {
      const share = 100 * s.area / (w * h);
      const row = el("li", "bar-row");
      const track = el("div", "bar-track");
      const fill = el("div", "bar-fill");
      track.append(fill);
      row.append(el("span", "bar-label", s.label), track, el("span", "bar-value", share.toFixed(1) + "%"));
      row.title = s.label + ": " + share.toFixed(2) + "% of the pixels";
      view.bars.append(row);
      requestAnimationFrame(() => { fill.style.width = Math.max(0.5, share).toFixed(2) + "%"; });
    });
    overlayMask(view, result);
    view.meta.textContent = latency;
  }

  // The index-mask PNG of a segmentation or instance answer (masks=png), painted on a canvas over
  // the image: value 0 transparent, every other value in its palette colour.
  function overlayMask(view, result) {
    view.frame.querySelectorAll(".mask").forEach((m) => m.remove());
    if (result.mask_png) {
      const png = new Image();
      png.onload = () => {
        const canvas = el("canvas", "mask");
        canvas.width = png.width;
        canvas.height = png.height;
        const ctx = canvas.getContext("2d");
        ctx.drawImage(png, 0, 0);
        const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height);
        const d = pixels.data;
        for (let i = 0; i < d.length; i += 4) {
          d[i + 3] = d[i] || d[i + 1] || d[i + 2] ? 150 : 0;
        }
        ctx.putImageData(pixels, 0, 0);
        view.frame.append(canvas);
      };
      png.src = "data:image/png;base64," + result.mask_png;
    }
  }

  function fillCard(view, result, latency) {
    if (result.error) return failCard(view, result.error);
    if (result.detections) return fillDetections(view, result, latency);
    if (result.instances) {
      fillDetections(view, result, latency);
      return overlayMask(view, result);
    }
    if (result.segments) return fillSegments(view, result, latency);
    view.label.textContent = result.label;
    view.label.classList.remove("pending");
    view.score.textContent = (100 * result.score).toFixed(1) + "%";
    view.bars.replaceChildren();
    for (const c of result.top_k) {
      const row = el("li", "bar-row");
      const track = el("div", "bar-track");
      const fill = el("div", "bar-fill");
      track.append(fill);
      row.append(el("span", "bar-label", c.label), track, el("span", "bar-value", (100 * c.score).toFixed(1) + "%"));
      row.title = c.label + ": " + (100 * c.score).toFixed(2) + "%";
      view.bars.append(row);
      requestAnimationFrame(() => { fill.style.width = Math.max(0.5, 100 * c.score).toFixed(2) + "%"; });
    }
    view.meta.textContent = latency;
  }

  function failCard(view, error) {
    view.card.classList.add("failed");
    view.label.textContent = "not recognised";
    view.label.classList.remove("pending");
    view.bars.replaceChildren(el("div", "err-code", error.code), el("div", "err-msg", error.message));
  }

  async function predict(files) {
    const name = els.model.value;
    if (!name) { setStatus("Choose a model first.", true); return; }
    if (name.startsWith(FACES)) return searchFaces(files, name.slice(FACES.length));
    const views = files.map(makeCard);
    els.results.prepend(...views.map((v) => v.card));
    setStatus("Predicting " + files.length + " image" + (files.length > 1 ? "s" : "") + "…");
    let done = 0;
    for (let i = 0; i < files.length; i += CHUNK) {
      const part = files.slice(i, i + CHUNK);
      const form = new FormData();
      for (const f of part) form.append("files", f, f.name);
      const t0 = performance.now();
      try {
        const model = models.get(name);
        const masks = model && (model.task === "segment" || model.task === "instance") ? "&masks=png" : "";
        const url = "/v1/models/" + encodeURIComponent(name) + "/predict?top_k=" + els.topK.value + masks;
        const body = await api(url, { method: "POST", body: form });
        const rtt = performance.now() - t0;
        const latency = "server " + body.latency_ms.toFixed(1) + " ms · round trip " + rtt.toFixed(0) + " ms";
        body.predictions.forEach((r, j) => fillCard(views[i + j], r, latency));
      } catch (err) {
        part.forEach((_, j) => failCard(views[i + j], { code: err.code || "error", message: err.message }));
      }
      done += part.length;
    }
    setStatus("Done: " + done + " image" + (done > 1 ? "s" : "") + " with " + name + ".");
  }

  function onFiles(list) {
    const files = Array.from(list || []).filter((f) => f.size > 0);
    if (files.length) predict(files);
  }

  els.input.addEventListener("change", () => { onFiles(els.input.files); els.input.value = ""; });
  ["dragenter", "dragover"].forEach((t) => els.drop.addEventListener(t, (e) => {
    e.preventDefault(); els.drop.classList.add("dragover");
  }));
  ["dragleave", "drop"].forEach((t) => els.drop.addEventListener(t, (e) => {
    e.preventDefault(); els.drop.classList.remove("dragover");
  }));
  els.drop.addEventListener("drop", (e) => onFiles(e.dataTransfer && e.dataTransfer.files));
  els.model.addEventListener("change", showModel);

  if (AUTH) {
    els.keyControl.hidden = false;
    els.key.value = sessionStorage.getItem("imgrec-key") || "";
    els.key.addEventListener("change", () => {
      sessionStorage.setItem("imgrec-key", els.key.value.trim());
      loadModels();
    });
  }
  loadModels();
})();
