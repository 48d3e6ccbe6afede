// The model in the browser: onnxruntime-web on its WebAssembly backend.
//
// The pipeline is segme.preprocess / segme.postprocess (postprocess.js): the whole frame is
// resized to the card's input size (aspect ratio ignored, as the models were validated),
// scaled to [0, 1], normalised with the card's mean/std, and the model's alpha [1, 1, h, w]
// comes back in [0, 1] (the sigmoid is inside the exported graph) and is upsampled to the
// frame's size as the card's `pipeline` says (guided, with its radius, eps and band).

// The plain-WASM build of onnxruntime-web (no WebGPU/WebGL code) and its one .wasm binary,
// which Vite copies into the build so nothing is fetched from a CDN.
import * as ort from 'onnxruntime-web/wasm';
import wasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.wasm?url';
import { grey } from './imgproc.js';
import { prepare, restore } from './postprocess.js';

/**
 * The model card from the server, with the constants of what segme does around the model
 * (`pipeline`), which both backends and the effects need.
 *
 * @param {string} api base URL of the API, e.g. "/v1"
 * @throws {Error} when it cannot be fetched or lacks the pipeline constants
 */
export async function loadCard(api) {
  const card = await (await fetchOk(`${api}/model`)).json();
  if (typeof card.pipeline !== 'object' || card.pipeline === null) {
    throw new Error('the server sends no pipeline constants with its model card');
  }
  return card;
}

/**
 * Fetch the ONNX model of `card` and start an inference session.
 *
 * @param {string} api base URL of the API, e.g. "/v1"
 * @param {object} card from loadCard
 * @returns {Promise<BrowserSegmenter>}
 * @throws {Error} with a message saying what failed (no WebAssembly, a fetch, the session)
 */
export async function loadBrowserModel(api, card) {
  if (typeof WebAssembly !== 'object') {
    throw new Error('this browser has no WebAssembly');
  }
  checkCard(card);
  // the card says where the ONNX file is, or null when the server runs another format
  const onnxUrl = 'onnx_url' in card ? card.onnx_url : `${api}/model.onnx`;
  if (!onnxUrl) throw new Error('the server offers no ONNX file of its model');
  const bytes = new Uint8Array(await (await fetchOk(onnxUrl)).arrayBuffer());

  // One thread: multi-threaded WASM needs SharedArrayBuffer, which needs the page to be
  // cross-origin isolated (COOP/COEP headers); one thread runs anywhere.
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.wasm.wasmPaths = { wasm: wasmUrl };
  let session;
  try {
    session = await ort.InferenceSession.create(bytes, {
      executionProviders: ['wasm'],
      graphOptimizationLevel: 'all',
    });
  } catch (err) {
    throw new Error(`onnxruntime-web could not load the model: ${err.message ?? err}`);
  }
  return new BrowserSegmenter(card, session);
}

async function fetchOk(url) {
  let res;
  try {
    res = await fetch(url);
  } catch (err) {
    throw new Error(`could not fetch ${url}: ${err.message ?? err}`);
  }
  if (!res.ok) throw new Error(`GET ${url} answered ${res.status} ${res.statusText}`.trim());
  return res;
}

/** Reject cards this page cannot feed, with a reason a user can act on. */
function checkCard(card) {
  const [h, w] = card.input_size ?? [];
  if (!(h > 0 && w > 0)) throw new Error('the model card has no input_size');
  if (card.mean?.length !== 3 || card.std?.length !== 3) {
    throw new Error('the model card has no mean and std');
  }
  if ((card.output ?? 'alpha') !== 'alpha') {
    throw new Error(`the page needs a model whose output is alpha, not ${card.output}`);
  }
  if (!['rgb', 'bgr'].includes(card.color_order ?? 'rgb')) {
    throw new Error(`unknown colour order ${card.color_order}`);
  }
  const extra = (card.stateful_inputs ?? []).filter((name) => name !== 'prev_alpha');
  if (extra.length) throw new Error(`the page cannot feed the inputs ${extra.join(', ')}`);
}

/** Frame in, alpha mask out, on the CPU of this browser. */
export class BrowserSegmenter {
  /**
   * @param {object} card the model card (segme.cards.ModelCard as JSON)
   * @param {ort.InferenceSession} session
   */
  constructor(card, session) {
    this.where = 'in your browser (WASM)';
    this.card = card;
    this.session = session;
    this.inputName = session.inputNames[0];
    this.outputName = session.outputNames.includes('alpha') ? 'alpha' : session.outputNames[0];
    [this.h, this.w] = card.input_size;
    const plane = this.h * this.w;
    const hasPrior = (card.stateful_inputs ?? []).includes('prev_alpha');
    this.channels = hasPrior ? 4 : 3;
    this.x = new Float32Array(this.channels * plane); // [1, C, h, w]
    this.prior = hasPrior ? this.x.subarray(3 * plane) : null; // previous alpha, 0 at a cut
    // x = (rgb / 255 - mean) / std  ==  rgb * scale - shift
    this.scale = card.std.map((s) => 1 / (255 * s));
    this.shift = card.mean.map((m, c) => m / card.std[c]);
    this.order = card.color_order === 'bgr' ? [2, 1, 0] : [0, 1, 2]; // model plane -> RGB index
  }

  /** Forget the previous frame (a new photo or a new camera session). */
  reset() {
    this.prior?.fill(0);
  }

  /**
   * @param {HTMLCanvasElement} frame the frame at its own size (unused: `rgb` holds it)
   * @param {object} rgb the frame, uint8 RGB image (imgproc.js)
   * @returns {Promise<{alpha: Float32Array, meanAlpha: number}>} alpha [H * W] in [0, 1] at
   *   the frame's size; meanAlpha its mean
   */
  async segment(frame, rgb) {
    const { w, h, x, scale, shift, order } = this;
    const plane = w * h;
    const { small, guide } = prepare(rgb, this.card);
    for (let c = 0; c < 3; c++) {
      const src = order[c];
      const off = c * plane;
      const k = scale[src];
      const b = shift[src];
      for (let i = 0; i < plane; i++) x[off + i] = small.data[3 * i + src] * k - b;
    }
    const feeds = { [this.inputName]: new ort.Tensor('float32', x, [1, this.channels, h, w]) };
    const out = await this.session.run(feeds);
    const alpha = Float32Array.from(out[this.outputName].data); // [1, 1, h, w]
    if (this.prior) {
      for (let i = 0; i < plane; i++) this.prior[i] = Math.min(1, Math.max(0, alpha[i]));
    }
    const full = restore(alpha, guide, grey(rgb), this.card.pipeline).data;
    let sum = 0;
    for (let i = 0; i < full.length; i++) sum += full[i];
    return { alpha: full, meanAlpha: sum / full.length };
  }
}
