// The page: a photo or the webcam in, the person over a new or blurred background out.
//
// Segmentation runs in the browser (onnxruntime-web, WASM) when it can, else on the server
// (`?backend=server` forces that). For tests the page exposes:
//   body[data-state]        "loading" | "ready" | "segmented" | "error"
//   body[data-backend]      "wasm" | "server"
//   #result[data-mean-alpha] mean alpha of the last result, in [0, 1]
//   #result[data-frames]    results drawn so far
//   #fps[data-fps]          frames per second of the webcam loop over the last second
//   #status                 where the model runs, in words

import './style.css';
import { Compositor } from './composite.js';
import { loadBrowserModel } from './model.js';
import { ServerSegmenter } from './server.js';

const API = '/v1';
const MAX_SIDE = 1920; // photos are shrunk to this long side: plenty for a screen, fast to draw

const $ = (id) => document.getElementById(id);
const ui = {
  photo: $('photo'),
  camera: $('camera'),
  cameraNote: $('camera-note'),
  video: $('video'),
  result: $('result'),
  color: $('bg-color'),
  bgImage: $('bg-image'),
  bgClear: $('bg-clear'),
  strength: $('blur-strength'),
  strengthValue: $('blur-value'),
  fps: $('fps'),
  latency: $('latency'),
  save: $('save'),
  status: $('status'),
  message: $('message'),
};

const compositor = new Compositor();
const frame = document.createElement('canvas'); // the current frame at its own size
const effect = { kind: 'replace', color: ui.color.value, image: null, strength: 15 };
let segmenter = null; // BrowserSegmenter | ServerSegmenter
let last = null; // {mask, meanAlpha} of the frame on screen, to redraw on an effect change
let frames = 0;
let failing = false; // the last segmentation failed and #message says so
let camera = null; // {stream, token} while the webcam runs
const fpsTimes = [];
let work = Promise.resolve(); // the segmenter and `frame` serve one job at a time

/** Run `job` after the jobs before it; a photo picked mid-frame waits for that frame. */
function exclusive(job) {
  const done = work.then(job, job);
  work = done.catch(() => {});
  return done;
}

function setState(state) {
  document.body.dataset.state = state;
}

function showMessage(text) {
  ui.message.textContent = text ?? '';
  ui.message.hidden = !text;
}

function useSegmenter(s, why = '') {
  segmenter = s;
  document.body.dataset.backend = s instanceof ServerSegmenter ? 'server' : 'wasm';
  ui.status.textContent = `The model runs ${s.where}.${why ? ` ${why}` : ''}`;
}

/** Fall back to the server after the in-browser model failed, saying why. */
function fallBack(err) {
  console.warn('segme: in-browser model unavailable:', err);
  useSegmenter(
    new ServerSegmenter(API),
    `The in-browser model could not run (${err.message ?? err}), so the server segments instead.`,
  );
}

async function start() {
  setState('loading');
  const backend = new URLSearchParams(location.search).get('backend');
  if (backend === 'server') {
    useSegmenter(new ServerSegmenter(API), '(Chosen by ?backend=server.)');
  } else {
    try {
      useSegmenter(await loadBrowserModel(API));
    } catch (err) {
      fallBack(err);
    }
  }
  ui.photo.disabled = false;
  if (!navigator.mediaDevices?.getUserMedia) {
    ui.cameraNote.textContent = window.isSecureContext
      ? 'This browser gives pages no camera access.'
      : 'The webcam needs a secure page: open it as https:// or on localhost.';
    ui.cameraNote.hidden = false;
  } else {
    ui.camera.disabled = false;
  }
  setState('ready');
}

/** Segment what `frame` holds and draw the result; returns false when it failed. */
async function segmentFrame() {
  const t0 = performance.now();
  let out;
  try {
    out = await segmenter.segment(frame);
  } catch (err) {
    if (segmenter instanceof ServerSegmenter) {
      failing = true;
      showMessage(`Segmentation failed: ${err.message ?? err}`);
      return false;
    }
    fallBack(err); // "session.run throws": try the same frame on the server
    return segmentFrame();
  }
  if (failing) showMessage(''); // the server answers again
  failing = false;
  last = out;
  ui.latency.textContent = `${Math.round(performance.now() - t0)} ms per frame`;
  redraw();
  return true;
}

function redraw() {
  if (!last) return;
  compositor.draw(ui.result, frame, last.mask, effect);
  frames += 1;
  ui.result.dataset.meanAlpha = last.meanAlpha.toFixed(4);
  ui.result.dataset.frames = String(frames);
  const what = effect.kind === 'blur' ? 'blurred' : 'replaced';
  ui.result.setAttribute('aria-label', `Result: the person with the background ${what}`);
  ui.save.disabled = false;
  setState('segmented');
}

// --- photo -------------------------------------------------------------------------------

async function openPhoto(file) {
  stopCamera();
  showMessage('');
  let bitmap;
  try {
    bitmap = await createImageBitmap(file); // EXIF orientation applied, as the server does
  } catch {
    showMessage(`Could not read ${file.name} as an image.`);
    return;
  }
  await exclusive(async () => {
    const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
    frame.width = Math.max(1, Math.round(bitmap.width * scale));
    frame.height = Math.max(1, Math.round(bitmap.height * scale));
    frame.getContext('2d').drawImage(bitmap, 0, 0, frame.width, frame.height);
    bitmap.close();
    segmenter.reset();
    ui.result.classList.remove('mirrored');
    await segmentFrame();
  });
}

// --- webcam ------------------------------------------------------------------------------

async function startCamera() {
  showMessage('');
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 } },
      audio: false,
    });
  } catch (err) {
    showMessage(`The webcam could not start: ${err.message || err.name}.`);
    return;
  }
  const token = {};
  camera = { stream, token };
  ui.video.srcObject = stream;
  await ui.video.play();
  segmenter.reset();
  ui.result.classList.add('mirrored'); // a selfie view, as in a mirror
  ui.camera.textContent = 'Stop webcam';
  ui.camera.setAttribute('aria-pressed', 'true');
  fpsTimes.length = 0;
  loop(token);
}

function stopCamera() {
  if (!camera) return;
  for (const track of camera.stream.getTracks()) track.stop();
  camera = null;
  ui.video.srcObject = null;
  ui.camera.textContent = 'Start webcam';
  ui.camera.setAttribute('aria-pressed', 'false');
  showFps(0);
}

/**
 * One new camera frame at a time, as fast as the segmenter answers (the server: its own pace);
 * a frame that arrives while the last one is being segmented is skipped, not queued.
 */
async function loop(token) {
  const video = ui.video;
  while (camera?.token === token) {
    await nextVideoFrame(video);
    if (camera?.token !== token) break;
    if (!(video.readyState >= 2 && video.videoWidth > 0)) continue;
    const ok = await exclusive(() => {
      if (camera?.token !== token) return null; // a photo was picked meanwhile
      if (frame.width !== video.videoWidth) frame.width = video.videoWidth;
      if (frame.height !== video.videoHeight) frame.height = video.videoHeight;
      frame.getContext('2d').drawImage(video, 0, 0);
      return segmentFrame();
    });
    if (camera?.token !== token) break;
    if (ok) tickFps();
    else await sleep(1000); // a failing server: try again, slowly
  }
}

/** Resolves when the video shows a frame it has not shown before (or at the next paint). */
function nextVideoFrame(video) {
  return new Promise((resolve) => {
    if ('requestVideoFrameCallback' in video) {
      video.requestVideoFrameCallback(() => resolve());
      // a stopped camera never presents another frame: let the loop see that and end
      setTimeout(resolve, 500);
    } else {
      requestAnimationFrame(() => resolve());
    }
  });
}

function tickFps() {
  const now = performance.now();
  fpsTimes.push(now);
  while (fpsTimes.length && now - fpsTimes[0] > 1000) fpsTimes.shift();
  const span = (now - fpsTimes[0]) / 1000;
  showFps(fpsTimes.length > 1 ? (fpsTimes.length - 1) / span : 0);
}

function showFps(fps) {
  ui.fps.dataset.fps = fps.toFixed(1);
  ui.fps.textContent = `${fps.toFixed(1)} fps`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// --- controls ----------------------------------------------------------------------------

ui.photo.addEventListener('change', () => {
  const file = ui.photo.files?.[0];
  ui.photo.value = ''; // picking the same file again still fires "change"
  if (file) openPhoto(file);
});

ui.camera.addEventListener('click', () => (camera ? stopCamera() : startCamera()));

for (const radio of document.querySelectorAll('input[name="effect"]')) {
  radio.addEventListener('change', () => {
    effect.kind = radio.value;
    for (const row of document.querySelectorAll('[data-effect]')) {
      row.hidden = row.dataset.effect !== effect.kind;
    }
    if (!camera) redraw();
  });
}

ui.color.addEventListener('input', () => {
  effect.color = ui.color.value;
  if (!camera) redraw();
});

ui.bgImage.addEventListener('change', async () => {
  const file = ui.bgImage.files?.[0];
  ui.bgImage.value = '';
  if (!file) return;
  try {
    effect.image?.close();
    effect.image = await createImageBitmap(file);
  } catch {
    showMessage(`Could not read ${file.name} as an image.`);
    return;
  }
  ui.bgClear.hidden = false;
  if (!camera) redraw();
});

ui.bgClear.addEventListener('click', () => {
  effect.image?.close();
  effect.image = null;
  ui.bgClear.hidden = true;
  if (!camera) redraw();
});

ui.strength.addEventListener('input', () => {
  effect.strength = Number(ui.strength.value);
  ui.strengthValue.textContent = ui.strength.value;
  if (!camera) redraw();
});

ui.save.addEventListener('click', () => {
  ui.result.toBlob((blob) => {
    const link = document.createElement('a');
    link.href = URL.createObjectURL(blob);
    link.download = 'segme.png';
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  }, 'image/png');
});

start().catch((err) => {
  setState('error');
  showMessage(`The page could not start: ${err.message ?? err}`);
});
