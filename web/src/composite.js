// Frame + alpha mask -> the picture with its background replaced or blurred, on canvases.
//
// The same arithmetic as segme.effects: out = frame * a + background * (1 - a), where the
// background is a colour, a photo scaled to cover the frame (centre crop), or the frame itself
// blurred with sigma = strength / 1000 * short side and normalised by the background weight
// (blur(frame * (1 - a)) / blur(1 - a)) so the person's colours do not bleed into it as a halo.

/**
 * @typedef {object} Effect
 * @property {'replace' | 'blur'} kind
 * @property {string} color CSS colour of the new background, e.g. "#00b140"
 * @property {ImageBitmap | null} image background photo; replaces the colour when set
 * @property {number} strength blur strength (15 = sigma of 1.5% of the short side)
 */

export class Compositor {
  constructor() {
    this.person = document.createElement('canvas'); // frame with alpha = mask
    this.small = document.createElement('canvas'); // work canvases for the blur
    this.smallBg = document.createElement('canvas');
  }

  /**
   * Draw the result onto `out`, resized to the frame.
   *
   * @param {HTMLCanvasElement} out
   * @param {HTMLCanvasElement} frame the frame at its own size
   * @param {HTMLCanvasElement} mask alpha in the alpha channel, any size (scaled bilinearly)
   * @param {Effect} effect
   */
  draw(out, frame, mask, effect) {
    const { width: W, height: H } = frame;
    resize(out, W, H);
    resize(this.person, W, H);

    const p = this.person.getContext('2d');
    p.globalCompositeOperation = 'copy';
    p.drawImage(frame, 0, 0);
    p.globalCompositeOperation = 'destination-in'; // keep the frame where the mask is
    p.imageSmoothingEnabled = true;
    p.drawImage(mask, 0, 0, W, H);

    const ctx = out.getContext('2d');
    ctx.globalCompositeOperation = 'source-over';
    if (effect.kind === 'blur') {
      this.drawBlurred(ctx, frame, mask, effect.strength);
    } else if (effect.image) {
      drawCover(ctx, effect.image, W, H);
    } else {
      ctx.fillStyle = effect.color;
      ctx.fillRect(0, 0, W, H);
    }
    ctx.drawImage(this.person, 0, 0);
  }

  drawBlurred(ctx, frame, mask, strength) {
    const { width: W, height: H } = frame;
    const sigma = Math.max(0.5, (strength / 1000) * Math.min(W, H));
    // A wide blur loses nothing at reduced resolution: shrink so it is ~2 px there.
    const f = Math.max(1, sigma / 2);
    const sw = Math.max(1, Math.round(W / f));
    const sh = Math.max(1, Math.round(H / f));
    const blur = `blur(${(sigma * sw) / W}px)`;

    // The background alone (premultiplied frame * (1 - a)), blurred: a pixel's colour read
    // back un-premultiplied is blur(frame * (1 - a)) / blur(1 - a), its alpha blur(1 - a).
    resize(this.smallBg, sw, sh);
    const bg = this.smallBg.getContext('2d', { willReadFrequently: true });
    bg.globalCompositeOperation = 'copy';
    bg.filter = 'none';
    bg.drawImage(frame, 0, 0, sw, sh);
    bg.globalCompositeOperation = 'destination-out';
    bg.drawImage(mask, 0, 0, sw, sh);
    resize(this.small, sw, sh);
    const s = this.small.getContext('2d', { willReadFrequently: true });
    s.globalCompositeOperation = 'copy';
    s.filter = blur;
    s.drawImage(this.smallBg, 0, 0);
    const img = s.getImageData(0, 0, sw, sh);
    const px = img.data;
    // Where some background is near, use its normalised colour; deep inside the person
    // (no background within reach) fall back to the plain blur of the whole frame.
    for (let i = 3; i < px.length; i += 4) px[i] = px[i] > 6 ? 255 : 0;
    s.putImageData(img, 0, 0);

    bg.globalCompositeOperation = 'copy';
    bg.filter = blur;
    bg.drawImage(frame, 0, 0, sw, sh);
    bg.filter = 'none';
    bg.globalCompositeOperation = 'source-over';
    bg.drawImage(this.small, 0, 0);

    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(this.smallBg, 0, 0, W, H);
  }
}

/** Scale `image` to cover W x H and draw its centre (segme.effects.fit_background "fill"). */
function drawCover(ctx, image, W, H) {
  const scale = Math.max(W / image.width, H / image.height);
  const w = image.width * scale;
  const h = image.height * scale;
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(image, (W - w) / 2, (H - h) / 2, w, h);
}

function resize(canvas, width, height) {
  // assigning a size clears the canvas and resets its state, so only do it on a change
  if (canvas.width !== width) canvas.width = width;
  if (canvas.height !== height) canvas.height = height;
}
