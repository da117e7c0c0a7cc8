"""The rate-distortion loss, one definition for training and for online adaptation.

loss = λ · D + R: R in bits per pixel from the entropy model's likelihoods, D = 255² · MSE on RGB
(or 1 - MS-SSIM), whatever colour space the model codes in, as evaluation measures it.
"""
import torch


def rd_loss(out: dict, x: torch.Tensor, lmbda, colour_space: str = "rgb", distortion: str = "mse") -> dict:
    """x: (B, 3, H, W), or (B, T, 3, H, W) clips; bpp is per pixel of every frame. lmbda: a number,
    or one per sample (B,). Also returns each sample's bpp and MSE."""
    b = x.shape[0]
    pixels = x[0, ..., 0, :, :].numel()
    bits = sum(torch.log2(lik.float()).reshape(b, -1).sum(1) for lik in out["likelihoods"].values())
    bpp = -bits / pixels
    x_hat = out["x_hat"].float()
    if colour_space != "rgb":
        from oval.kernels import from_model_space
        x_hat = from_model_space(x_hat.flatten(0, -4), colour_space).view_as(x_hat)
        x = from_model_space(x.flatten(0, -4), colour_space).view_as(x)
    mse = ((x_hat - x) ** 2).reshape(b, -1).mean(1)
    if distortion == "ms-ssim":
        from pytorch_msssim import ms_ssim
        per_image = ms_ssim(x_hat.flatten(0, -4).clamp(0, 1), x.flatten(0, -4), data_range=1.0, win_size=7,
                            size_average=False)
        d = 1 - per_image.view(b, -1).mean(1)
    else:
        d = 255**2 * mse
    loss = (torch.as_tensor(lmbda, device=x.device) * d + bpp).mean()
    return {"loss": loss, "bpp": bpp.mean(), "mse": mse.mean(), "bpp_each": bpp.detach(), "mse_each": mse.detach()}
