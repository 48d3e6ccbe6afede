// The OpenCV operations that segme's Python side uses, with OpenCV's arithmetic (pixel
// centres, border rules, kernel sizes, rounding), so that the page computes what
// segme.preprocess, segme.postprocess and segme.effects compute.
//
// An image is {width, height, channels, data}: data holds width * height * channels values,
// channels interleaved; uint8 images in a Uint8ClampedArray (which rounds and clamps on
// assignment, as OpenCV's saturate_cast does), float ones in a Float32Array.

export function makeImage(width, height, channels, Type = Float32Array) {
  return { width, height, channels, data: new Type(width * height * channels) };
}

/** ImageData (RGBA) -> uint8 RGB image. */
export function rgbOf(imageData) {
  const { width, height, data } = imageData;
  const out = makeImage(width, height, 3, Uint8ClampedArray);
  for (let i = 0, j = 0; i < data.length; i += 4, j += 3) {
    out.data[j] = data[i];
    out.data[j + 1] = data[i + 1];
    out.data[j + 2] = data[i + 2];
  }
  return out;
}

/** cv2.cvtColor(RGB2GRAY) of a uint8 RGB image: OpenCV's fixed-point weights and rounding. */
export function grey(rgb) {
  const out = makeImage(rgb.width, rgb.height, 1, Uint8ClampedArray);
  const s = rgb.data;
  for (let i = 0, j = 0; i < out.data.length; i++, j += 3) {
    out.data[i] = (s[j] * 9798 + s[j + 1] * 19235 + s[j + 2] * 3735 + 16384) >> 15;
  }
  return out;
}

/** Python's round() and OpenCV's cvRound: halves to even. */
export function rint(x) {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * cv2.resize with INTER_AREA when it shrinks both sides (OpenCV falls back to bilinear
 * otherwise) or with INTER_LINEAR; `area` picks the first where it applies.
 */
export function resize(src, width, height, area) {
  const shrinks = src.width >= width && src.height >= height;
  return area && shrinks ? resizeArea(src, width, height) : resizeLinear(src, width, height);
}

/**
 * cv2.resize(INTER_AREA), shrinking: each output pixel is the mean of the source area it
 * covers, pixels on its edge weighted by how much of them it covers. `scaleX`, `scaleY`:
 * source pixels per output pixel (OpenCV takes 1 / fx when fx is given).
 */
export function resizeArea(src, width, height, scaleX = src.width / width,
  scaleY = src.height / height) {
  const { channels: c, data: s } = src;
  const xs = areaTable(src.width, width, scaleX);
  const ys = areaTable(src.height, height, scaleY);
  const rows = new Float32Array(src.height * width * c); // each source row, resized across
  for (let y = 0; y < src.height; y++) {
    const row = y * src.width * c;
    const to = y * width * c;
    for (let k = 0; k < xs.dst.length; k++) {
      const d = to + xs.dst[k] * c;
      const f = row + xs.src[k] * c;
      for (let ch = 0; ch < c; ch++) rows[d + ch] += s[f + ch] * xs.weight[k];
    }
  }
  const out = makeImage(width, height, c, src.data.constructor);
  const acc = new Float32Array(width * c);
  let k = 0;
  for (let y = 0; y < height; y++) {
    acc.fill(0);
    for (; k < ys.dst.length && ys.dst[k] === y; k++) {
      const from = ys.src[k] * width * c;
      const wgt = ys.weight[k];
      for (let i = 0; i < acc.length; i++) acc[i] += rows[from + i] * wgt;
    }
    out.data.set(acc, y * width * c);
  }
  return out;
}

/** OpenCV's computeResizeAreaTab: (output index, source index, weight) triples. */
function areaTable(ssize, dsize, scale) {
  const dst = [];
  const src = [];
  const weight = [];
  const add = (d, sIndex, w) => {
    dst.push(d);
    src.push(sIndex);
    weight.push(w);
  };
  for (let d = 0; d < dsize; d++) {
    const f1 = d * scale;
    const f2 = f1 + scale;
    const cell = Math.min(scale, ssize - f1);
    let s2 = Math.min(Math.floor(f2), ssize - 1);
    const s1 = Math.min(Math.ceil(f1), s2);
    if (s1 - f1 > 1e-3) add(d, s1 - 1, (s1 - f1) / cell);
    for (let sx = s1; sx < s2; sx++) add(d, sx, 1 / cell);
    if (f2 - s2 > 1e-3) add(d, s2, Math.min(f2 - s2, 1, cell) / cell);
  }
  return { dst: Int32Array.from(dst), src: Int32Array.from(src), weight: Float32Array.from(weight) };
}

/** cv2.resize(INTER_LINEAR): pixel centres aligned, edges clamped. */
export function resizeLinear(src, width, height) {
  const { channels: c, data: s } = src;
  const xs = linearTable(src.width, width);
  const ys = linearTable(src.height, height);
  const rows = new Float32Array(src.height * width * c);
  for (let y = 0; y < src.height; y++) {
    const row = y * src.width * c;
    for (let x = 0, d = y * width * c; x < width; x++, d += c) {
      const a = row + xs.i0[x] * c;
      const b = row + xs.i1[x] * c;
      const t = xs.t[x];
      for (let ch = 0; ch < c; ch++) rows[d + ch] = s[a + ch] + (s[b + ch] - s[a + ch]) * t;
    }
  }
  const out = makeImage(width, height, c, src.data.constructor);
  const o = out.data;
  const n = width * c;
  for (let y = 0; y < height; y++) {
    const a = ys.i0[y] * n;
    const b = ys.i1[y] * n;
    const t = ys.t[y];
    for (let i = 0, d = y * n; i < n; i++) o[d + i] = rows[a + i] + (rows[b + i] - rows[a + i]) * t;
  }
  return out;
}

function linearTable(ssize, dsize) {
  const scale = ssize / dsize;
  const i0 = new Int32Array(dsize);
  const i1 = new Int32Array(dsize);
  const t = new Float32Array(dsize);
  for (let d = 0; d < dsize; d++) {
    const f = (d + 0.5) * scale - 0.5;
    let s = Math.floor(f);
    let frac = f - s;
    if (s < 0) [s, frac] = [0, 0];
    if (s >= ssize - 1) [s, frac] = [ssize - 1, 0];
    i0[d] = s;
    i1[d] = Math.min(s + 1, ssize - 1);
    t[d] = frac;
  }
  return { i0, i1, t };
}

// borders: cv2.BORDER_REFLECT (box filter) repeats the edge pixel, BORDER_REFLECT_101
// (Gaussian blur, OpenCV's default) does not
const reflect = (p, n) => {
  while (n > 1 && (p < 0 || p >= n)) p = p < 0 ? -p - 1 : 2 * n - p - 1;
  return n > 1 ? p : 0;
};
const reflect101 = (p, n) => {
  while (n > 1 && (p < 0 || p >= n)) p = p < 0 ? -p : 2 * n - p - 2;
  return n > 1 ? p : 0;
};

/** cv2.boxFilter(normalize=True, BORDER_REFLECT) over a (2r + 1)-square window: running
 * sums across, then down (in double precision, as OpenCV sums float images). */
export function boxFilter(src, r) {
  const { width: w, height: h, channels: c, data: s } = src;
  const n = 2 * r + 1;
  const across = new Float64Array(w * h * c);
  for (let y = 0; y < h; y++) {
    const row = y * w * c;
    for (let ch = 0; ch < c; ch++) {
      let sum = 0;
      for (let k = -r; k <= r; k++) sum += s[row + reflect(k, w) * c + ch];
      across[row + ch] = sum;
      for (let x = 1; x < w; x++) {
        sum += s[row + reflect(x + r, w) * c + ch] - s[row + reflect(x - r - 1, w) * c + ch];
        across[row + x * c + ch] = sum;
      }
    }
  }
  const out = makeImage(w, h, c);
  const m = w * c;
  const sum = new Float64Array(m);
  for (let k = -r; k <= r; k++) {
    const from = reflect(k, h) * m;
    for (let i = 0; i < m; i++) sum[i] += across[from + i];
  }
  for (let y = 0; y < h; y++) {
    if (y > 0) {
      const add = reflect(y + r, h) * m;
      const drop = reflect(y - r - 1, h) * m;
      for (let i = 0; i < m; i++) sum[i] += across[add + i] - across[drop + i];
    }
    for (let i = 0; i < m; i++) out.data[y * m + i] = sum[i] / (n * n);
  }
  return out;
}

/** cv2.GaussianBlur(ksize=(0, 0), sigma) of a float image: its kernel size (4 sigmas each
 * side for float images) and border; across, then down. */
export function gaussianBlur(src, sigma) {
  const { width: w, height: h, channels: c, data: s } = src;
  const r = (Math.round(sigma * 8 + 1) | 1) >> 1;
  const kernel = new Float64Array(r + 1); // centre first: the kernel is symmetric
  let total = 0;
  for (let j = 0; j <= r; j++) {
    kernel[j] = Math.exp((-0.5 * j * j) / (sigma * sigma));
    total += j ? 2 * kernel[j] : kernel[j];
  }
  for (let j = 0; j <= r; j++) kernel[j] /= total;
  const m = w * c;
  const across = new Float32Array(h * m);
  const pad = new Float32Array((w + 2 * r) * c); // a row with its borders
  for (let y = 0; y < h; y++) {
    for (let x = -r; x < w + r; x++) {
      const from = y * m + reflect101(x, w) * c;
      for (let ch = 0; ch < c; ch++) pad[(x + r) * c + ch] = s[from + ch];
    }
    for (let i = 0; i < m; i++) {
      const o = i + r * c;
      let sum = kernel[0] * pad[o];
      for (let j = 1; j <= r; j++) sum += kernel[j] * (pad[o - j * c] + pad[o + j * c]);
      across[y * m + i] = sum;
    }
  }
  const out = makeImage(w, h, c);
  for (let y = 0; y < h; y++) {
    const o = out.data.subarray(y * m, (y + 1) * m);
    const centre = y * m;
    for (let i = 0; i < m; i++) o[i] = kernel[0] * across[centre + i];
    for (let j = 1; j <= r; j++) {
      const a = reflect101(y - j, h) * m;
      const b = reflect101(y + j, h) * m;
      const k = kernel[j];
      for (let i = 0; i < m; i++) o[i] += k * (across[a + i] + across[b + i]);
    }
  }
  return out;
}

/** cv2.dilate of a 0/1 uint8 plane with cv2.getStructuringElement(MORPH_ELLIPSE, 2r + 1):
 * a row's ones counted up to each column, so each of the ellipse's rows is one lookup. */
export function dilateEllipse(src, r) {
  const { width: w, height: h, data: s } = src;
  const spans = []; // per row offset dy: the half width of the ellipse
  for (let dy = -r; dy <= r; dy++) spans.push(rint(r * Math.sqrt((r * r - dy * dy) / (r * r))));
  const ones = new Int32Array(h * (w + 1)); // ones[y][x]: ones in row y left of column x
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) ones[y * (w + 1) + x + 1] = ones[y * (w + 1) + x] + (s[y * w + x] ? 1 : 0);
  }
  const out = makeImage(w, h, 1, Uint8ClampedArray);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let v = 0;
      // outside the image counts as nothing
      for (let dy = Math.max(-r, -y); dy <= Math.min(r, h - 1 - y) && !v; dy++) {
        const row = (y + dy) * (w + 1);
        const dx = spans[dy + r];
        v = ones[row + Math.min(w, x + dx + 1)] - ones[row + Math.max(0, x - dx)] > 0 ? 1 : 0;
      }
      out.data[y * w + x] = v;
    }
  }
  return out;
}
