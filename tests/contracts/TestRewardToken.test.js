const { expect } = require("chai");
const { ethers } = require("hardhat");
const { loadFixture, time } = require("@nomicfoundation/hardhat-network-helpers");

const PERMIT_TYPES = {
  Permit: [
    { name: "owner", type: "address" },
    { name: "spender", type: "address" },
    { name: "value", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
};

describe("TestRewardToken", function () {
  async function deployFixture() {
    const [owner, alice, bob] = await ethers.getSigners();
    const usd = await ethers.deployContract("TestRewardToken", ["Test USD", "tUSD", 6, owner.address]);
    const rwd = await ethers.deployContract("TestRewardToken", ["Test Reward", "tRWD", 18, owner.address]);
    return { usd, rwd, owner, alice, bob };
  }

  it("reports the name, symbol and decimals given at deployment", async function () {
    const { usd, rwd, owner } = await loadFixture(deployFixture);
    expect(await usd.name()).to.equal("Test USD");
    expect(await usd.symbol()).to.equal("tUSD");
    expect(await usd.decimals()).to.equal(6n);
    expect(await rwd.decimals()).to.equal(18n);
    expect(await usd.owner()).to.equal(owner.address);
    expect(await usd.totalSupply()).to.equal(0n);
  });

  it("lets the owner mint", async function () {
    const { usd, rwd, owner, alice } = await loadFixture(deployFixture);
    const amount = ethers.parseUnits("12.5", 6);
    await expect(usd.connect(owner).mint(alice.address, amount))
      .to.emit(usd, "Transfer")
      .withArgs(ethers.ZeroAddress, alice.address, amount);
    expect(await usd.balanceOf(alice.address)).to.equal(12_500_000n);

    await rwd.connect(owner).mint(alice.address, ethers.parseEther("1"));
    expect(await rwd.balanceOf(alice.address)).to.equal(10n ** 18n);
  });

  it("refuses minting by anyone but the owner", async function () {
    const { usd, alice } = await loadFixture(deployFixture);
    await expect(usd.connect(alice).mint(alice.address, 1n))
      .to.be.revertedWithCustomError(usd, "OwnableUnauthorizedAccount")
      .withArgs(alice.address);
  });

  it("sets an allowance from an EIP-2612 permit relayed by someone else", async function () {
    const { usd, owner, alice, bob } = await loadFixture(deployFixture);
    const amount = ethers.parseUnits("100", 6);
    await usd.connect(owner).mint(alice.address, amount);

    const deadline = BigInt(await time.latest()) + 3600n;
    const domain = {
      name: "Test USD",
      version: "1",
      chainId: (await ethers.provider.getNetwork()).chainId,
      verifyingContract: await usd.getAddress(),
    };
    expect(await usd.DOMAIN_SEPARATOR()).to.equal(ethers.TypedDataEncoder.hashDomain(domain));
    const value = { owner: alice.address, spender: bob.address, value: amount, nonce: 0n, deadline };
    const { v, r, s } = ethers.Signature.from(await alice.signTypedData(domain, PERMIT_TYPES, value));

    await expect(usd.connect(bob).permit(alice.address, bob.address, amount, deadline, v, r, s))
      .to.emit(usd, "Approval")
      .withArgs(alice.address, bob.address, amount);
    expect(await usd.allowance(alice.address, bob.address)).to.equal(amount);
    expect(await usd.nonces(alice.address)).to.equal(1n);

    await usd.connect(bob).transferFrom(alice.address, bob.address, amount);
    expect(await usd.balanceOf(bob.address)).to.equal(amount);

    // The nonce moved on, so the same permit now recovers to some other address.
    await expect(
      usd.connect(bob).permit(alice.address, bob.address, amount, deadline, v, r, s),
    ).to.be.revertedWithCustomError(usd, "ERC2612InvalidSigner");
  });

  it("rejects an expired permit", async function () {
    const { usd, alice, bob } = await loadFixture(deployFixture);
    const deadline = BigInt(await time.latest()) + 10n;
    const domain = {
      name: "Test USD",
      version: "1",
      chainId: (await ethers.provider.getNetwork()).chainId,
      verifyingContract: await usd.getAddress(),
    };
    const value = { owner: alice.address, spender: bob.address, value: 1n, nonce: 0n, deadline };
    const { v, r, s } = ethers.Signature.from(await alice.signTypedData(domain, PERMIT_TYPES, value));
    await time.setNextBlockTimestamp(deadline + 1n);
    await expect(usd.connect(bob).permit(alice.address, bob.address, 1n, deadline, v, r, s))
      .to.be.revertedWithCustomError(usd, "ERC2612ExpiredSignature")
      .withArgs(deadline);
  });
});
