// The page: a photo or the webcam in, the person over a new or blurred background out.
//
// Segmentation runs in the browser (onnxruntime-web, WASM) when it can, else on the server
// (`?backend=server` forces that); either way the page draws the effect itself (effects.js),
// as segme.effects does, with the constants of the model card's `pipeline`. For tests the page
// exposes:
//   body[data-state]        "loading" | "ready" | "segmented" | "error"
//   body[data-backend]      "wasm" | "server"
//   #result[data-mean-alpha] mean alpha of the last result, in [0, 1]
//   #result[data-frames]    results drawn so far
//   #fps[data-fps]          frames per second of the webcam loop over the last second
//   #status                 where the model runs, in words

import './style.css';
import { render } from './effects.js';
import { rgbOf } from './imgproc.js';
import { loadBrowserModel, loadCard } from './model.js';
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

const frame = document.createElement('canvas'); // the current frame at its own size
const frameCtx = frame.getContext('2d', { willReadFrequently: true });
/** @type {import('./effects.js').Effect} */
const effect = { kind: 'replace', color: [0, 0, 0], photo: null, strength: 0 };
let card = null; // the model card, with `pipeline`
let segmenter = null; // BrowserSegmenter | ServerSegmenter
let last = null; // {rgb, alpha, meanAlpha} of the frame on screen, to redraw on an effect change
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
    new ServerSegmenter(API, card),
    `The in-browser model could not run (${err.message ?? err}), so the server segments instead.`,
  );
}

/** "#rrggbb" -> [r, g, b] */
const rgbOfHex = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));

async function start() {
  setState('loading');
  card = await loadCard(API);
  const { background, strength, max_strength: maxStrength } = card.pipeline;
  if (/^#[0-9a-f]{6}$/i.test(background)) ui.color.value = background;
  effect.color = rgbOfHex(ui.color.value);
  ui.strength.max = String(maxStrength);
  ui.strength.value = ui.strengthValue.textContent = String(strength);
  effect.strength = strength;
  const backend = new URLSearchParams(location.search).get('backend');
  if (backend === 'server') {
    useSegmenter(new ServerSegmenter(API, card), '(Chosen by ?backend=server.)');
  } else {
    try {
      useSegmenter(await loadBrowserModel(API, card));
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
  const rgb = rgbOf(frameCtx.getImageData(0, 0, frame.width, frame.height));
  let out;
  try {
    out = await segmenter.segment(frame, rgb);
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
  last = { rgb, ...out };
  ui.latency.textContent = `${Math.round(performance.now() - t0)} ms per frame`;
  redraw();
  return true;
}

function redraw() {
  if (!last) return;
  const picture = render(effect, last.rgb, last.alpha, card.pipeline);
  if (ui.result.width !== picture.width) ui.result.width = picture.width;
  if (ui.result.height !== picture.height) ui.result.height = picture.height;
  ui.result.getContext('2d').putImageData(picture, 0, 0);
  frames += 1;
  ui.result.dataset.meanAlpha = last.meanAlpha.toFixed(4);
  ui.result.dataset.frames = String(frames);
  const what = { blur: 'the background blurred', replace: 'the background replaced',
    mask: 'its mask' }[effect.kind];
  ui.result.setAttribute('aria-label', `Result: the person with ${what}`);
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
    frameCtx.drawImage(bitmap, 0, 0, frame.width, frame.height);
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
      frameCtx.drawImage(video, 0, 0);
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
  effect.color = rgbOfHex(ui.color.value);
  if (!camera) redraw();
});

ui.bgImage.addEventListener('change', async () => {
  const file = ui.bgImage.files?.[0];
  ui.bgImage.value = '';
  if (!file) return;
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    showMessage(`Could not read ${file.name} as an image.`);
    return;
  }
  const canvas = document.createElement('canvas'); // its pixels, at its own size
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  effect.photo = rgbOf(ctx.getImageData(0, 0, canvas.width, canvas.height));
  ui.bgClear.hidden = false;
  if (!camera) redraw();
});

ui.bgClear.addEventListener('click', () => {
  effect.photo = null;
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
