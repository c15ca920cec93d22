package fr.repere.app

import android.content.Context
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import java.io.File
import java.security.GeneralSecurityException
import java.security.KeyStore
import java.security.SecureRandom
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/**
 * The store's 32-byte key. It is random, and kept on disk only wrapped (AES-GCM) by a key that
 * lives in the Android Keystore and never leaves it (hardware-backed where the tablet has it).
 * SQLCipher needs the raw key in memory while the store is open; that cannot be avoided.
 *
 * The wrapping key needs no user authentication: SyncWorker opens the store in the background,
 * screen locked.
 */
class KeyProvider(context: Context) {
    private val wrapped = File(context.noBackupFilesDir, "repere.key.wrapped")

    /** Throws [GeneralSecurityException] if the key cannot be read (the store is left untouched). */
    fun databaseKey(createIfMissing: Boolean): ByteArray {
        if (wrapped.exists()) return unwrap(wrapped.readBytes())
        if (!createIfMissing) throw GeneralSecurityException("store exists but its wrapped key is missing")
        val key = ByteArray(32).also { SecureRandom().nextBytes(it) }
        // Write then rename: a crash never leaves a half-written key next to a new store.
        val tmp = File(wrapped.path + ".tmp")
        tmp.writeBytes(wrap(key))
        if (!tmp.renameTo(wrapped)) throw GeneralSecurityException("cannot store the wrapped key")
        return key
    }

    private fun wrappingKey(): SecretKey {
        val keyStore = KeyStore.getInstance(KEYSTORE).apply { load(null) }
        (keyStore.getKey(ALIAS, null) as? SecretKey)?.let { return it }
        val spec = KeyGenParameterSpec.Builder(ALIAS, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
            .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
            .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
            .setKeySize(256)
            .build()
        return KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, KEYSTORE).run {
            init(spec)
            generateKey()
        }
    }

    // Layout: [iv length][iv][ciphertext + GCM tag]. The Keystore picks the IV.
    private fun wrap(key: ByteArray): ByteArray {
        val cipher = Cipher.getInstance(TRANSFORMATION).apply { init(Cipher.ENCRYPT_MODE, wrappingKey()) }
        val iv = cipher.iv
        return byteArrayOf(iv.size.toByte()) + iv + cipher.doFinal(key)
    }

    private fun unwrap(blob: ByteArray): ByteArray {
        val ivLength = blob[0].toInt()
        val iv = blob.copyOfRange(1, 1 + ivLength)
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.DECRYPT_MODE, wrappingKey(), GCMParameterSpec(128, iv))
        return cipher.doFinal(blob, 1 + ivLength, blob.size - 1 - ivLength)
    }

    private companion object {
        const val KEYSTORE = "AndroidKeyStore"
        const val ALIAS = "repere-store-key-wrapper"
        const val TRANSFORMATION = "AES/GCM/NoPadding"
    }
}
