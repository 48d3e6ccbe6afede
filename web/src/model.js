// The model in the browser: onnxruntime-web on its WebAssembly backend.
//
// The pipeline mirrors segme.preprocess / segme.postprocess: the whole frame is resized to the
// card's input size (aspect ratio ignored, as the models were validated), scaled to [0, 1],
// normalised with the card's mean/std, and the model's alpha [1, 1, h, w] comes back in [0, 1]
// (the sigmoid is inside the exported graph). Upsampling to the frame size is left to the
// compositor, which draws the model-size mask with bilinear smoothing.

// The plain-WASM build of onnxruntime-web (no WebGPU/WebGL code) and its one .wasm binary,
// which Vite copies into the build so nothing is fetched from a CDN.
import * as ort from 'onnxruntime-web/wasm';
import wasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.wasm?url';

/**
 * Fetch the model card and the ONNX model from the server and start an inference session.
 *
 * @param {string} api base URL of the API, e.g. "/v1"
 * @returns {Promise<BrowserSegmenter>}
 * @throws {Error} with a message saying what failed (no WebAssembly, a fetch, the session)
 */
export async function loadBrowserModel(api) {
  if (typeof WebAssembly !== 'object') {
    throw new Error('this browser has no WebAssembly');
  }
  const card = await (await fetchOk(`${api}/model`)).json();
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
    const mean = card.mean ?? [0.485, 0.456, 0.406];
    const std = card.std ?? [0.229, 0.224, 0.225];
    this.scale = std.map((s) => 1 / (255 * s));
    this.shift = mean.map((m, c) => m / std[c]);
    this.order = card.color_order === 'bgr' ? [2, 1, 0] : [0, 1, 2]; // model plane -> RGBA index

    this.input = makeCanvas(this.w, this.h);
    this.inputCtx = this.input.getContext('2d', { willReadFrequently: true });
    this.inputCtx.imageSmoothingQuality = 'high'; // closer to INTER_AREA when shrinking
    this.mask = makeCanvas(this.w, this.h);
    this.maskCtx = this.mask.getContext('2d');
    this.maskImage = new ImageData(this.w, this.h);
  }

  /** Forget the previous frame (a new photo or a new camera session). */
  reset() {
    this.prior?.fill(0);
  }

  /**
   * @param {HTMLCanvasElement} frame the frame at its own size
   * @returns {Promise<{mask: HTMLCanvasElement, meanAlpha: number}>} mask: alpha in the alpha
   *   channel at the model's size; meanAlpha in [0, 1]
   */
  async segment(frame) {
    const { w, h, x, scale, shift, order } = this;
    const plane = w * h;
    this.inputCtx.drawImage(frame, 0, 0, w, h);
    const rgba = this.inputCtx.getImageData(0, 0, w, h).data;
    for (let c = 0; c < 3; c++) {
      const src = order[c];
      const off = c * plane;
      const k = scale[src];
      const b = shift[src];
      for (let i = 0; i < plane; i++) x[off + i] = rgba[4 * i + src] * k - b;
    }
    const feeds = { [this.inputName]: new ort.Tensor('float32', x, [1, this.channels, h, w]) };
    const out = await this.session.run(feeds);
    const alpha = out[this.outputName].data; // [1, 1, h, w]

    const px = this.maskImage.data; // RGB stays 0; alpha carries the mask
    let sum = 0;
    for (let i = 0; i < plane; i++) {
      const a = Math.min(1, Math.max(0, alpha[i]));
      sum += a;
      px[4 * i + 3] = Math.round(a * 255);
      if (this.prior) this.prior[i] = a;
    }
    this.maskCtx.putImageData(this.maskImage, 0, 0);
    return { mask: this.mask, meanAlpha: sum / plane };
  }
}

function makeCanvas(width, height) {
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  return canvas;
}
