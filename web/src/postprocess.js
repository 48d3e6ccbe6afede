// The model's way in and out, as segme.preprocess.prepare and segme.postprocess.restore do it:
// the frame resized to the card's input size (INTER_AREA when shrinking, aspect ratio
// ignored, as the models were validated) and its grey copy kept as the guide; the model's
// alpha brought back to the frame's size by guided upsampling (or bilinearly), with the
// constants the server sends beside the card (`card.pipeline`).

import {
  boxFilter, dilateEllipse, grey, makeImage, resize, resizeLinear,
} from './imgproc.js';

/**
 * uint8 RGB frame -> the model-size RGB image and its grey copy (segme.preprocess.prepare).
 *
 * @returns {{small: object, guide: object}}
 */
export function prepare(rgb, card) {
  const [h, w] = card.input_size;
  const small = resize(rgb, w, h, rgb.width * rgb.height > w * h);
  return { small, guide: grey(small) };
}

/**
 * Model alpha (Float32Array [h * w], the card's input size) -> float image [H, W] in [0, 1]
 * at the frame's size (segme.postprocess.restore).
 *
 * @param {Float32Array} alpha
 * @param {object} guide the frame at the model's size, grey uint8 (prepare)
 * @param {object} frameGrey the frame, grey uint8, at its own size
 * @param {object} pipeline card.pipeline: upsample, guided_radius, guided_eps, band
 */
export function restore(alpha, guide, frameGrey, pipeline) {
  const p = { width: guide.width, height: guide.height, channels: 1, data: alpha };
  const { width: W, height: H } = frameGrey;
  if (pipeline.upsample !== 'guided') return clip01(resizeLinear(p, W, H));
  return guidedUpsample(p, guide, frameGrey, pipeline);
}

/**
 * segme.postprocess.guided_upsample: the fast guided filter (He & Sun 2015), fitted at the
 * alpha's resolution and applied to the full-size grey frame, weighted by the model's
 * uncertain band (grown by the window and feathered), bilinear elsewhere.
 */
function guidedUpsample(p, guide, frameGrey, { guided_radius: r, guided_eps: eps, band }) {
  const n = p.data.length;
  const I = makeImage(p.width, p.height, 1);
  for (let i = 0; i < n; i++) I.data[i] = guide.data[i] / 255;
  const [a, b] = guidedCoefficients(I, p, r, eps);
  const unsure = makeImage(p.width, p.height, 1, Uint8ClampedArray);
  for (let i = 0; i < n; i++) unsure.data[i] = p.data[i] > band[0] && p.data[i] < band[1];
  const grown = dilateEllipse(unsure, r);
  const weight = boxFilter({ ...grown, data: Float32Array.from(grown.data) }, r);
  // out = weight * (a * grey + b) + (1 - weight) * p: one linear model in grey, resized
  for (let i = 0; i < n; i++) {
    const wt = weight.data[i];
    b.data[i] = wt * (b.data[i] - p.data[i]) + p.data[i];
    a.data[i] = (wt * a.data[i]) / 255;
  }
  const { width: W, height: H } = frameGrey;
  const aFull = resizeLinear(a, W, H);
  const out = resizeLinear(b, W, H);
  const g = frameGrey.data;
  for (let i = 0; i < out.data.length; i++) out.data[i] += g[i] * aFull.data[i];
  return clip01(out);
}

/** segme.postprocess.guided_coefficients: the smoothed local linear model a, b. */
function guidedCoefficients(I, p, r, eps) {
  const product = (x, y) => ({ ...x, data: x.data.map((v, i) => v * y.data[i]) });
  const meanI = boxFilter(I, r);
  const meanP = boxFilter(p, r);
  const meanII = boxFilter(product(I, I), r);
  const meanIP = boxFilter(product(I, p), r);
  const a = makeImage(p.width, p.height, 1);
  const b = makeImage(p.width, p.height, 1);
  for (let i = 0; i < a.data.length; i++) {
    const varI = meanII.data[i] - meanI.data[i] * meanI.data[i];
    a.data[i] = (meanIP.data[i] - meanI.data[i] * meanP.data[i]) / (varI + eps);
    b.data[i] = meanP.data[i] - a.data[i] * meanI.data[i];
  }
  return [boxFilter(a, r), boxFilter(b, r)];
}

function clip01(img) {
  const d = img.data;
  for (let i = 0; i < d.length; i++) d[i] = Math.min(1, Math.max(0, d[i]));
  return img;
}
