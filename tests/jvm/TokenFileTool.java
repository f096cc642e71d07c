// Test helper: Hadoop's own Credentials reading and writing token files, for cross-checks with the
// Python codec. Output is one JSON object per line, so tests compare field by field.
//
//   read FILE                        every token and secret key in FILE, read by readTokenStorageFile
//   write FILE WRITABLE|PROTOBUF     reads tab-separated "token ALIAS KIND SERVICE IDHEX PWHEX" and
//                                    "secret ALIAS HEX" lines from stdin, writes them with
//                                    writeTokenStorageFile in the given format
import java.io.BufferedReader;
import java.io.File;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.io.Text;
import org.apache.hadoop.security.Credentials;
import org.apache.hadoop.security.token.Token;
import org.apache.hadoop.security.token.TokenIdentifier;
import org.apache.hadoop.security.token.delegation.AbstractDelegationTokenIdentifier;

public final class TokenFileTool {
  private static String hex(byte[] bytes) {
    StringBuilder sb = new StringBuilder();
    for (byte b : bytes) {
      sb.append(String.format("%02x", b & 0xff));
    }
    return sb.toString();
  }

  private static byte[] unhex(String s) {
    byte[] out = new byte[s.length() / 2];
    for (int i = 0; i < out.length; i++) {
      out[i] = (byte) Integer.parseInt(s.substring(2 * i, 2 * i + 2), 16);
    }
    return out;
  }

  private static String str(String s) {
    StringBuilder sb = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      if (c == '"' || c == '\\') {
        sb.append('\\').append(c);
      } else if (c < 0x20) {
        sb.append(String.format("\\u%04x", (int) c));
      } else {
        sb.append(c);
      }
    }
    return sb.append('"').toString();
  }

  private static void read(String file) throws Exception {
    Credentials creds = Credentials.readTokenStorageFile(new File(file), new Configuration(false));
    for (Map.Entry<Text, Token<? extends TokenIdentifier>> e : creds.getTokenMap().entrySet()) {
      Token<? extends TokenIdentifier> t = e.getValue();
      StringBuilder sb = new StringBuilder("{\"type\":\"token\",\"alias\":").append(str(e.getKey().toString()))
          .append(",\"kind\":").append(str(t.getKind().toString()))
          .append(",\"service\":").append(str(t.getService().toString()))
          .append(",\"identifier\":").append(str(hex(t.getIdentifier())))
          .append(",\"password\":").append(str(hex(t.getPassword())))
          .append(",\"url\":").append(str(t.encodeToUrlString()));
      TokenIdentifier id = null;
      try {
        id = t.decodeIdentifier();
      } catch (Exception ignored) {
        // kinds without a registered identifier class stay opaque
      }
      if (id instanceof AbstractDelegationTokenIdentifier) {
        AbstractDelegationTokenIdentifier d = (AbstractDelegationTokenIdentifier) id;
        sb.append(",\"owner\":").append(str(d.getOwner().toString()))
            .append(",\"renewer\":").append(str(d.getRenewer().toString()))
            .append(",\"real_user\":").append(str(d.getRealUser().toString()))
            .append(",\"issue_date\":").append(d.getIssueDate())
            .append(",\"max_date\":").append(d.getMaxDate())
            .append(",\"sequence_number\":").append(d.getSequenceNumber())
            .append(",\"master_key_id\":").append(d.getMasterKeyId());
      }
      System.out.println(sb.append('}'));
    }
    for (Text alias : creds.getAllSecretKeys()) {
      System.out.println("{\"type\":\"secret\",\"alias\":" + str(alias.toString()) + ",\"value\":"
          + str(hex(creds.getSecretKey(alias))) + "}");
    }
  }

  private static void write(String file, String format) throws Exception {
    Credentials creds = new Credentials();
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    for (String line = in.readLine(); line != null; line = in.readLine()) {
      String[] f = line.split("\t", -1);
      if (f[0].equals("token")) {
        Token<TokenIdentifier> t = new Token<>(unhex(f[4]), unhex(f[5]), new Text(f[2]), new Text(f[3]));
        creds.addToken(new Text(f[1]), t);
      } else if (f[0].equals("secret")) {
        creds.addSecretKey(new Text(f[1]), unhex(f[2]));
      }
    }
    creds.writeTokenStorageFile(new org.apache.hadoop.fs.Path("file://" + new File(file).getAbsolutePath()),
        new Configuration(false), Credentials.SerializedFormat.valueOf(format));
  }

  public static void main(String[] args) throws Exception {
    if (args.length >= 2 && args[0].equals("read")) {
      read(args[1]);
    } else if (args.length >= 3 && args[0].equals("write")) {
      write(args[1], args[2]);
    } else {
      System.err.println("usage: TokenFileTool read FILE | write FILE WRITABLE|PROTOBUF < lines");
      System.exit(2);
    }
  }
}
